import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withCacheHeader, errors, errorResponses, sendCachedJson } from '@aicache/service-kit';
import {
  DEFAULT_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  type FileProcessor,
  type ProcessInput,
} from '../domain/file-processor.js';

import { MAX_EMBEDDED_CHUNKS, MAX_PROCESS_CHUNKS, MAX_TEXT_BYTES, ModelId, ProcessResultSchema } from '../schemas.js';

export interface ProcessRoutesOptions {
  processor: FileProcessor;
  /** Appended to the 413 of an upload over the size limit: where larger texts go instead. */
  tooLargeHint?: string;
}

const ACCEPTED_TYPES = ['text/plain', 'text/markdown', 'application/json', 'text/csv'];
const TYPE_ALIASES: Record<string, string> = { 'text/x-markdown': 'text/markdown' };
// Clients such as curl send application/octet-stream for extensions they do not know (.md): trust these.
const TYPE_BY_EXTENSION: Record<string, string> = {
  txt: 'text/plain',
  text: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  json: 'application/json',
  csv: 'text/csv',
};
const MAX_FIELD_BYTES = 1024;

const Options = {
  filename: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  mimeType: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  chunkSize: Type.Optional(
    Type.Integer({ minimum: MIN_CHUNK_SIZE, maximum: MAX_CHUNK_SIZE, default: DEFAULT_CHUNK_SIZE, description: 'Characters per chunk' }),
  ),
  // No schema default: the default depends on chunkSize, and is the same for uploads.
  chunkOverlap: Type.Optional(
    Type.Integer({ minimum: 0, maximum: MAX_CHUNK_SIZE / 2, description: 'Characters shared by neighbouring chunks, at most chunkSize / 2; default 15% of chunkSize (150 for 1000)' }),
  ),
  model: Type.Optional(ModelId),
  includeEmbeddings: Type.Optional(
    Type.Boolean({ default: false, description: `Add each chunk's embedding to the answer (at most ${MAX_EMBEDDED_CHUNKS} chunks; 413 past that)` }),
  ),
};

// No maxLength: the limit is in UTF-8 bytes, which the handler checks (a 413 that says where larger texts go); the
// body limit bounds what reaches it.
const ProcessTextBody = Type.Object(
  { text: Type.String({ minLength: 1, description: '1 byte to 2 MiB of UTF-8 text (413 past it)' }), ...Options },
  { additionalProperties: false },
);

const responses = {
  200: withCacheHeader(ProcessResultSchema),
  ...errorResponses(400, 413, 415, 429, 502, 503),
};

function fieldInt(name: string, raw: string): number {
  if (!/^\d{1,6}$/.test(raw.trim())) throw new errors.BadRequest(`field '${name}' must be a whole number (got ${JSON.stringify(raw.slice(0, 50))})`);
  return Number(raw.trim());
}

function fieldBool(name: string, raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === '') return false;
  throw new errors.BadRequest(`field '${name}' must be true or false (got ${JSON.stringify(raw.slice(0, 50))})`);
}

function acceptedType(declared: string, filename: string): string | undefined {
  const type = declared.split(';')[0]!.trim().toLowerCase();
  const canonical = TYPE_ALIASES[type] ?? type;
  if (ACCEPTED_TYPES.includes(canonical)) return canonical;
  if (canonical === 'application/octet-stream' || canonical === '') {
    const ext = /\.([a-z0-9]+)$/i.exec(filename)?.[1]?.toLowerCase();
    return ext ? TYPE_BY_EXTENSION[ext] : undefined;
  }
  return undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

async function readUpload(request: FastifyRequest, tooLargeHint: string): Promise<ProcessInput> {
  if (!request.isMultipart()) {
    throw new errors.UnsupportedMediaType(
      `expected a multipart/form-data upload with one file field (got ${JSON.stringify(request.headers['content-type'] ?? 'no content type')})`,
    );
  }
  const input: Partial<ProcessInput> = {};
  let file: { text: string; filename: string; mimeType: string } | undefined;

  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (file) {
          part.file.resume();
          throw new errors.BadRequest('send exactly one file per request');
        }
        const mimeType = acceptedType(part.mimetype, part.filename);
        if (!mimeType) {
          part.file.resume();
          throw new errors.UnsupportedMediaType(
            `unsupported file type ${JSON.stringify(part.mimetype)}; accepted: ${ACCEPTED_TYPES.join(', ')}`,
          );
        }
        const bytes = await part.toBuffer();
        let text: string;
        try {
          text = utf8.decode(bytes);
        } catch {
          throw new errors.UnsupportedMediaType('the file is not valid UTF-8 text');
        }
        file = { text, filename: part.filename.slice(0, 255), mimeType };
        continue;
      }
      if (part.valueTruncated) throw new errors.BadRequest(`field '${part.fieldname}' is longer than ${MAX_FIELD_BYTES} bytes`);
      const value = typeof part.value === 'string' ? part.value : String(part.value);
      switch (part.fieldname) {
        case 'chunkSize':
          input.chunkSize = fieldInt('chunkSize', value);
          break;
        case 'chunkOverlap':
          input.chunkOverlap = fieldInt('chunkOverlap', value);
          break;
        case 'model':
          if (!value || value.length > 200) throw new errors.BadRequest("field 'model' must be 1 to 200 characters");
          input.model = value;
          break;
        case 'includeEmbeddings':
          input.includeEmbeddings = fieldBool('includeEmbeddings', value);
          break;
        default:
          throw new errors.BadRequest(
            `unknown field ${JSON.stringify(part.fieldname.slice(0, 50))}; accepted: file, chunkSize, chunkOverlap, model, includeEmbeddings`,
          );
      }
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw new errors.BodyTooLarge(`the file is larger than ${MAX_TEXT_BYTES} bytes (2 MiB)${tooLargeHint}`);
    if (code === 'FST_FILES_LIMIT') throw new errors.BadRequest('send exactly one file per request');
    if (code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') throw new errors.BadRequest('too many form fields');
    // Nothing in this loop but parsing can fail without a status: a missing boundary or a body cut short
    // is the client's malformed upload, not a server error.
    if (typeof (err as { statusCode?: unknown }).statusCode !== 'number') {
      throw new errors.BadRequest(`malformed multipart body: ${(err as Error).message}`);
    }
    throw err;
  }

  if (!file) throw new errors.BadRequest("no file in the upload: send the document in a multipart file field (e.g. -F file=@notes.md)");
  if (file.text.length === 0) throw new errors.BadRequest('the file is empty');
  return { ...input, text: file.text, filename: file.filename, mimeType: file.mimeType };
}

export const processRoutes: FastifyPluginAsync<ProcessRoutesOptions> = async (scope, opts) => {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  await app.register(multipart, {
    throwFileSizeLimit: true,
    limits: { fileSize: MAX_TEXT_BYTES, files: 1, fields: 8, parts: 10, fieldSize: MAX_FIELD_BYTES, headerPairs: 100 },
  });

  app.post(
    '/api/v1/process/text',
    {
      // Processing changes no one's data: a read key may (the chunks it embeds count against EMBEDDINGS_INPUTS_PER_MINUTE).
      config: { auth: 'read' },
      // 2 MiB of text grows when JSON-escaped; the handler checks the UTF-8 size of the text itself.
      bodyLimit: 4 * MAX_TEXT_BYTES,
      schema: {
        tags: ['process'],
        summary: 'Chunk and embed a text',
        description:
          'Splits the text into overlapping chunks on paragraph/sentence/word boundaries, embeds the distinct chunks ' +
          '(through the embeddings cache) and caches the result per (sha256 of text, chunkSize, chunkOverlap, model). `x-cache`: hit|miss. ' +
          `Limits: ${MAX_TEXT_BYTES} bytes of text, ${MAX_PROCESS_CHUNKS} chunks, ${MAX_EMBEDDED_CHUNKS} chunks with includeEmbeddings (413 past them). ` +
          'The distinct chunks embedded on a miss count against the credential\'s embedding inputs per minute (429 with Retry-After past it).',
        body: ProcessTextBody,
        response: responses,
      },
    },
    async (request, reply) => {
      const out = await opts.processor.process(request.body, (n) => scope.auth.chargeInputs(request, reply, n));
      return sendCachedJson(reply, out.cache, out.body);
    },
  );

  app.post(
    '/api/v1/process/file',
    {
      // Processing changes no one's data: a read key may (the chunks it embeds count against EMBEDDINGS_INPUTS_PER_MINUTE).
      config: { auth: 'read' },
      schema: {
        tags: ['process'],
        summary: 'Chunk and embed an uploaded text document',
        description:
          'multipart/form-data with one file (text/plain, text/markdown, application/json or text/csv; at most 2 MiB of UTF-8) ' +
          'and optional fields chunkSize, chunkOverlap, model, includeEmbeddings. Processed like /api/v1/process/text.',
        consumes: ['multipart/form-data'],
        response: responses,
      },
    },
    async (request, reply) => {
      const out = await opts.processor.process(await readUpload(request, opts.tooLargeHint ?? ''), (n) => scope.auth.chargeInputs(request, reply, n));
      return sendCachedJson(reply, out.cache, out.body);
    },
  );
};
