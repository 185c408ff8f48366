import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { ErrorResponse, errorResponses, errors, StateUnavailable, type ServiceApp } from '../src/index.js';
import { buildTestApp } from './helpers.js';

let app: ServiceApp;

beforeAll(async () => {
  app = await buildTestApp('errors-svc', { BODY_LIMIT_BYTES: '1024' });
  app.post('/documents', { schema: { body: Type.Object({ title: Type.String({ minLength: 1 }) }) } }, async (req) => ({ title: req.body.title }));
  app.post('/batch', { schema: { response: { 200: Type.Object({}), ...errorResponses(413) } } }, async () => {
    throw errors.BodyTooLarge('the batch has 3 items; one request takes at most 2');
  });
  app.get('/documents/:id', { schema: { params: Type.Object({ id: Type.String() }) } }, async (req) => {
    throw errors.NotFound('document', req.params.id);
  });
  app.get('/conflict', async () => {
    throw errors.Conflict('document 42 is being indexed');
  });
  app.get('/boom', async () => {
    throw new Error('connect to postgres://admin:hunter2@db failed');
  });
  app.get('/state', async () => {
    throw Object.assign(new StateUnavailable('agent store', 'no answer within 1500 ms'), { headers: { 'retry-after': '1' } });
  });
  app.get('/boom-with-headers', async () => {
    throw Object.assign(new Error('boom'), { headers: { 'x-internal': 'leak' } });
  });
  app.get('/peer', async () => {
    throw errors.PeerUnavailable('multimodal-worker', 'connect ECONNREFUSED');
  });
  await app.ready();
});
afterAll(() => app.close());

const shape = { statusCode: expect.any(Number), code: expect.any(String), error: expect.any(String), message: expect.any(String) };

describe('error shape', () => {
  it('a validation error is a 400 VALIDATION_ERROR naming the field', async () => {
    const res = await app.inject({ method: 'POST', url: '/documents', payload: {} });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ ...shape, statusCode: 400, code: 'VALIDATION_ERROR', error: 'Bad Request', message: expect.stringContaining('title') });
  });

  it('an unknown route is a 404 ROUTE_NOT_FOUND', async () => {
    const res = await app.inject({ method: 'GET', url: '/nowhere?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found', message: 'Route GET /nowhere not found' });
  });

  it('errors.NotFound renders as 404 NOT_FOUND with its message', async () => {
    const res = await app.inject({ method: 'GET', url: '/documents/42' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: "document '42' not found" });
  });

  it('errors.Conflict and errors.PeerUnavailable keep their codes and statuses', async () => {
    expect((await app.inject('/conflict')).json()).toMatchObject({ statusCode: 409, code: 'CONFLICT', message: 'document 42 is being indexed' });
    const peer = await app.inject('/peer');
    expect(peer.statusCode).toBe(503);
    expect(peer.json()).toMatchObject({ code: 'PEER_UNAVAILABLE', message: 'multimodal-worker is unavailable: connect ECONNREFUSED' });
  });

  it('sends the headers an error carries (Retry-After on a 503), as Fastify does, but none on a 500', async () => {
    const res = await app.inject('/state');
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toEqual({ statusCode: 503, code: 'STATE_UNAVAILABLE', error: 'Service Unavailable', message: 'agent store is unavailable: no answer within 1500 ms' });
    const boom = await app.inject('/boom-with-headers');
    expect(boom.statusCode).toBe(500);
    expect(boom.headers['x-internal']).toBeUndefined();
  });

  it('an unknown error is a 500 INTERNAL_ERROR that leaks nothing', async () => {
    const res = await app.inject({ method: 'GET', url: '/boom', headers: { 'x-request-id': 'boom-1' } });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'An internal error occurred (request id boom-1)' });
    expect(res.body).not.toMatch(/postgres|hunter2|stack|at .*\.ts/);
  });

  it('a body over BODY_LIMIT_BYTES is a 413 BODY_TOO_LARGE', async () => {
    const res = await app.inject({ method: 'POST', url: '/documents', payload: { title: 'x'.repeat(2000) } });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ statusCode: 413, code: 'BODY_TOO_LARGE', error: 'Payload Too Large', message: expect.any(String) });
  });

  it('an unsupported content type is a 415 and broken JSON a 400', async () => {
    const res = await app.inject({ method: 'POST', url: '/documents', payload: 'title=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ statusCode: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    const bad = await app.inject({ method: 'POST', url: '/documents', payload: '{"title":', headers: { 'content-type': 'application/json' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(bad.json().code).not.toMatch(/^FST_/);
  });
});

describe('one set of error names', () => {
  it('a limit on the work one request may ask for answers 413 BODY_TOO_LARGE, as an oversized body does', async () => {
    const res = await app.inject({ method: 'POST', url: '/batch', payload: {} });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ statusCode: 413, code: 'BODY_TOO_LARGE', message: 'the batch has 3 items; one request takes at most 2' });
    const big = await app.inject({ method: 'POST', url: '/documents', payload: { title: 'x'.repeat(2000) } });
    expect(big.json()).toMatchObject({ statusCode: 413, code: 'BODY_TOO_LARGE' });
  });

  it('errorResponses declares the one error body under each status', () => {
    expect(errorResponses(400, 404, 503)).toEqual({ 400: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse });
  });
});
