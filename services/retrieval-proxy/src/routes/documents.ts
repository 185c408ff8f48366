import type { FastifyInstance } from 'fastify';
import { peerCall, requestTenant } from './tenant.js';
import { errorResponses } from '@aicache/service-kit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { RetrievalService } from '../domain/retrieval-service.js';
import { DocumentId, Metadata } from '../schemas.js';

export interface DocumentRoutesOptions {
  retrieval: RetrievalService;
  bodyLimit: number;
}

const TAGS = ['documents'];

const IngestBody = Type.Object(
  {
    id: Type.Optional(DocumentId),
    title: Type.String({ minLength: 1, maxLength: 500 }),
    text: Type.String({ minLength: 1, maxLength: 1_048_576, description: '1 byte .. 1 MB (UTF-8)' }),
    source: Type.Optional(Type.String({ maxLength: 2048, description: 'A label only; never fetched' })),
    metadata: Type.Optional(Metadata),
    chunkSize: Type.Optional(Type.Integer({ minimum: 100, maximum: 8000, default: 800 })),
    chunkOverlap: Type.Optional(Type.Integer({ minimum: 0, maximum: 4000, description: 'At most chunkSize / 2; default 15% of chunkSize (120 for 800)' })),
  },
  { additionalProperties: false },
);

const IngestResponse = Type.Object({
  id: Type.String(),
  title: Type.String(),
  chunkCount: Type.Integer(),
  corpusVersion: Type.Integer(),
});

const DocumentSummary = Type.Object({
  id: Type.String(),
  title: Type.String(),
  source: Type.Optional(Type.String()),
  metadata: Metadata,
  createdAt: Type.String({ format: 'date-time' }),
  chunkCount: Type.Integer(),
  contentHash: Type.String(),
  model: Type.String(),
});

const DocumentDetail = Type.Object({
  ...DocumentSummary.properties,
  chunks: Type.Array(Type.Object({ index: Type.Integer(), text: Type.String() })),
});

const IdParams = Type.Object({ id: DocumentId }, { additionalProperties: false });

const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
  },
  { additionalProperties: false },
);

const ListResponse = Type.Object({
  total: Type.Integer(),
  offset: Type.Integer(),
  limit: Type.Integer(),
  documents: Type.Array(DocumentSummary),
});

const IndexResponse = Type.Object({
  engine: Type.Union([Type.Literal('redis'), Type.Literal('pgvector')]),
  model: Type.Union([Type.String(), Type.Null()], { description: 'The active embedding model: what queries and ingests embed with (null before the first ingest)' }),
  configuredModel: Type.Optional(Type.String({ description: 'RETRIEVAL_EMBEDDINGS_MODEL, when set (the active model wins when they differ)' })),
  dimensions: Type.Union([Type.Integer(), Type.Null()]),
  documents: Type.Integer({ description: "The tenant's documents" }),
  chunks: Type.Integer({ description: "The tenant's chunks" }),
  reembed: Type.Optional(
    Type.Object({ job: Type.String(), model: Type.String(), dimensions: Type.Integer() }, { description: 'A re-embed under way: searches use the active model until it switches' }),
  ),
  hnsw: Type.Optional(
    Type.Object(
      {
        m: Type.Integer(),
        efConstruction: Type.Integer(),
        efSearch: Type.Integer({ description: 'RETRIEVAL_PG_EF_SEARCH: candidates a search keeps' }),
        built: Type.Boolean({ description: 'false before the first ingest: m and efConstruction are then those the index will be built with' }),
      },
      { description: 'pgvector: the HNSW graph of the index in use (RETRIEVAL_PG_HNSW_M, RETRIEVAL_PG_HNSW_EF_CONSTRUCTION when it was built)' },
    ),
  ),
});

export async function documentRoutes(scope: FastifyInstance, opts: DocumentRoutesOptions): Promise<void> {
  // Strict validation: no type coercion of bodies ("5" is not a number), query strings still converted.
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { retrieval } = opts;

  app.post(
    '/api/v1/documents',
    {
      bodyLimit: opts.bodyLimit,
      schema: {
        tags: TAGS,
        summary: 'Ingest (or replace) a document',
        description:
          'Chunks the text locally (overlapping chunks cut on paragraph/sentence/word boundaries), embeds all chunks in one call ' +
          'to the multimodal-worker, stores them in the document index and bumps the corpus version, so no cached search or ' +
          'context answer from before is served again. Re-ingesting an id replaces the document. Worker down: 503, nothing stored.',
        body: IngestBody,
        response: { 201: IngestResponse, ...errorResponses(400, 413, 502, 503) },
      },
    },
    async (request, reply) => {
      const result = await retrieval.ingest(requestTenant(request), request.body, peerCall(request));
      return reply.code(201).send(result);
    },
  );

  app.get(
    '/api/v1/documents',
    {
      schema: {
        tags: TAGS,
        summary: 'List documents (id order)',
        querystring: ListQuery,
        response: { 200: ListResponse, ...errorResponses(400, 503) },
      },
    },
    async (request) => retrieval.list(requestTenant(request), request.query.offset ?? 0, request.query.limit ?? 20),
  );

  app.get(
    '/api/v1/index',
    {
      schema: {
        tags: TAGS,
        summary: 'The document index: engine, active embedding model, dimensions, counts',
        description:
          "The model every query and ingest is embedded with, the vectors' dimension, the tenant's documents and chunks, and the " +
          're-embed under way if any (POST /api/v1/jobs/reembed moves the index to another model in one atomic switch).',
        response: { 200: IndexResponse, ...errorResponses(503) },
      },
    },
    async (request) => retrieval.info(requestTenant(request)),
  );

  app.get(
    '/api/v1/documents/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'One document with its chunk texts',
        params: IdParams,
        response: { 200: DocumentDetail, ...errorResponses(400, 404, 503) },
      },
    },
    async (request) => retrieval.get(requestTenant(request), request.params.id),
  );

  app.delete(
    '/api/v1/documents/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'Delete a document',
        description: 'Removes the document and bumps the corpus version (cached answers that included it are no longer served).',
        params: IdParams,
        response: { 204: Type.Null({ description: 'Deleted' }), ...errorResponses(400, 404, 503) },
      },
    },
    async (request, reply) => {
      await retrieval.delete(requestTenant(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
}
