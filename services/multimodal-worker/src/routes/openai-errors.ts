import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { renderError } from '@aicache/service-kit';

/** OpenAI's error body: what the `openai` SDKs and LangChain read the message, type, param and code from. */
export const OpenAIErrorResponse = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String({ description: 'invalid_request_error, authentication_error, rate_limit_error or server_error' }),
      param: Type.Union([Type.String(), Type.Null()], { description: 'The request field the error is about, if any' }),
      code: Type.Union([Type.String(), Type.Null()], { description: 'Stable code, lower case (unknown_model, validation_error, body_too_large...)' }),
    }),
  },
  { description: 'Error (OpenAI shape)' },
);

function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

const PARAM_BY_CODE: Record<string, string> = { UNKNOWN_MODEL: 'model', MODEL_NOT_FOUND: 'model' };

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  params?: { missingProperty?: unknown; additionalProperty?: unknown };
}

/** The top-level field of the first validation issue: `input` for body/input/3, the property a `required` or `additionalProperties` issue names. */
function paramOf(err: FastifyError & { param?: unknown }, code: string): string | null {
  if (typeof err.param === 'string') return err.param;
  const issue = (err.validation as ValidationIssue[] | undefined)?.[0];
  if (issue) {
    const named = issue.params?.missingProperty ?? issue.params?.additionalProperty;
    if (typeof named === 'string') return named;
    const top = issue.instancePath?.split('/')[1];
    return top ? top : null;
  }
  return PARAM_BY_CODE[code] ?? null;
}

type RouteError = FastifyError & { param?: unknown };

/** Renders the error as the kit does, reshaped as OpenAI's error object; logs it as the kit does. */
function sendOpenAIError(err: RouteError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const rendered = renderError(err, String(request.id));
  if (rendered.statusCode >= 500) request.log.error({ err }, 'request failed');
  else request.log.info({ err: { code: err.code, message: err.message } }, 'request rejected');
  return reply.code(rendered.statusCode).send({
    error: { message: rendered.message, type: errorType(rendered.statusCode), param: paramOf(err, rendered.code), code: rendered.code.toLowerCase() },
  });
}

/**
 * Errors of the OpenAI-compatible routes in OpenAI's shape, so OpenAI clients show the worker's own
 * message; the rest of the service keeps the stack's shape. Registered inside the routes' plugin,
 * so it applies to those routes only (validation, body parsing and body-limit errors included).
 */
export function useOpenAIErrors(scope: FastifyInstance, hints: { bodyTooLarge?: string } = {}): void {
  scope.setErrorHandler((err: RouteError, request, reply) => {
    // Fastify's own "Request body is too large" says nothing of what to do instead.
    if (hints.bodyTooLarge && err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') err.message = `${err.message}${hints.bodyTooLarge}`;
    return sendOpenAIError(err, request, reply);
  });
}

/** Paths of the OpenAI-compatible routes. */
function isOpenAIPath(url: string): boolean {
  const path = url.split('?')[0]!;
  return path === '/api/v1/embeddings' || path === '/api/v1/models' || path.startsWith('/api/v1/models/');
}

/**
 * Fastify's `frameworkErrors`: a URL that cannot be decoded (/api/v1/models/%FF) fails before any
 * route, so no route's error handler sees it. Rendered here in the shape of the path it was meant for.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (isOpenAIPath(request.url)) {
    sendOpenAIError(err, request, reply);
    return;
  }
  const body = renderError(err, String(request.id));
  request.log.info({ err: { code: err.code, message: err.message } }, 'request rejected');
  void reply.code(body.statusCode).send(body);
}

/** Response schemas of an OpenAI-compatible route's error statuses. */
export function openAIErrorResponses(...statuses: number[]): Record<number, typeof OpenAIErrorResponse> {
  return Object.fromEntries(statuses.map((s) => [s, OpenAIErrorResponse]));
}
