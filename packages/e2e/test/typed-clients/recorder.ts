import type { Middleware } from 'openapi-fetch';

/** One answer as a client saw it: which operation (OpenAPI path template), its status and x-cache header. */
export interface Seen {
  service: 'worker' | 'proxy' | 'agents';
  method: string;
  path: string;
  status: number;
  xCache: string | null;
}

/** openapi-fetch middleware that notes every answer in `seen`. */
export function recorder(service: Seen['service'], seen: Seen[]): Middleware {
  return {
    onResponse({ request, response, schemaPath }) {
      seen.push({ service, method: request.method, path: schemaPath, status: response.status, xCache: response.headers.get('x-cache') });
    },
  };
}
