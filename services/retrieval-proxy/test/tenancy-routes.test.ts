import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanKeys, unlinkMatching } from '@aicache/test-redis';
import type { Redis } from 'ioredis';
import type { ServiceApp } from '@aicache/service-kit';
import type { TestRedis } from '@aicache/test-redis';
import { ADMIN_TOKEN, makeApp, rawClient, startFakeWorker, testConfig, testRedis, userKey, wipe, type FakeWorker } from './helpers.js';

/** The routes with authentication on: each API key acts for its user's tenant, and sees that tenant's documents only. */
const DB = 13;
const AUTH_DB = 14;

let redis: TestRedis;
let raw: Redis;
let authRaw: Redis;
let worker: FakeWorker;
let app: ServiceApp;
const keys: Record<'acme' | 'globex' | 'acmeReader', string> = { acme: '', globex: '', acmeReader: '' };

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  redis = await testRedis();
  raw = rawClient(redis, DB);
  authRaw = rawClient(redis, AUTH_DB);
  await wipe(raw);
  await unlinkMatching(authRaw, 'auth:*');
  worker = await startFakeWorker();
  app = await makeApp(testConfig(redis, DB, worker.url, { AUTH_MODE: 'on', REDIS_DB_AUTH: String(AUTH_DB) }));
  keys.acme = await userKey(app, 'acme-writer', 'acme', ['write']);
  keys.globex = await userKey(app, 'globex-writer', 'globex', ['write']);
  keys.acmeReader = await userKey(app, 'acme-reader', 'acme', ['read']);
});

afterAll(async () => {
  await app?.close();
  await worker?.close();
  if (raw) await wipe(raw);
  if (authRaw) await unlinkMatching(authRaw, 'auth:*');
  raw?.disconnect();
  authRaw?.disconnect();
  await redis?.stop();
});

type As = keyof typeof keys;
const ingest = (as: As, payload: object) => app.inject({ method: 'POST', url: '/api/v1/documents', headers: bearer(keys[as]), payload });
const read = (as: As, url: string) => app.inject({ method: 'GET', url, headers: bearer(keys[as]) });
const remove = (as: As, id: string) => app.inject({ method: 'DELETE', url: `/api/v1/documents/${id}`, headers: bearer(keys[as]) });
const search = (as: As, payload: object) => app.inject({ method: 'POST', url: '/api/v1/search', headers: bearer(keys[as]), payload });
const errorOf = (res: { statusCode: number; json: () => { code?: string; message?: string } }) => ({ status: res.statusCode, code: res.json().code, message: res.json().message });

describe('documents, search and context per tenant through the routes', () => {
  it("gives each tenant its own ids, and answers another tenant's id exactly as an unknown one", async () => {
    expect((await ingest('acme', { id: 'doc-1', title: 'Acme handbook', text: 'Acme refunds within 30 days.' })).statusCode).toBe(201);
    expect((await ingest('globex', { id: 'doc-1', title: 'Globex handbook', text: 'Globex refunds never.' })).statusCode).toBe(201);
    expect((await ingest('globex', { id: 'g-secret', title: 'Globex plans', text: 'The volcano lair opens in spring.' })).statusCode).toBe(201);

    expect((await read('acme', '/api/v1/documents/doc-1')).json().title).toBe('Acme handbook');
    expect((await read('acmeReader', '/api/v1/documents/doc-1')).json().title).toBe('Acme handbook');
    expect((await read('globex', '/api/v1/documents/doc-1')).json().title).toBe('Globex handbook');
    expect((await read('acme', '/api/v1/documents')).json()).toMatchObject({ total: 1, documents: [{ id: 'doc-1', title: 'Acme handbook' }] });
    expect((await read('globex', '/api/v1/documents')).json<{ documents: Array<{ id: string }> }>().documents.map((d) => d.id)).toEqual(['doc-1', 'g-secret']);

    const foreign = await read('acme', '/api/v1/documents/g-secret');
    expect(errorOf(foreign)).toEqual({ status: 404, code: 'NOT_FOUND', message: "document 'g-secret' not found" });
    expect(errorOf(await remove('acme', 'g-secret'))).toEqual(errorOf(foreign));
    expect((await read('globex', '/api/v1/documents/g-secret')).statusCode).toBe(200);
    expect((await remove('globex', 'g-secret')).statusCode).toBe(204);
    // Now unknown to everyone: the same answer Acme had while it existed.
    expect(errorOf(await read('acme', '/api/v1/documents/g-secret'))).toEqual(errorOf(foreign));
    expect(errorOf(await read('globex', '/api/v1/documents/g-secret'))).toEqual(errorOf(foreign));

    // A read-only key of the tenant may read, not write.
    expect((await ingest('acmeReader', { id: 'doc-2', title: 'x', text: 'y' })).statusCode).toBe(403);
    expect((await remove('acmeReader', 'doc-1')).statusCode).toBe(403);
    // No credential, no documents.
    expect((await app.inject({ method: 'GET', url: '/api/v1/documents/doc-1' })).statusCode).toBe(401);
  });

  it("searches and caches per tenant: the same query never gets another tenant's answer", async () => {
    const acme = await search('acme', { query: 'refunds' });
    expect(acme.statusCode).toBe(200);
    expect(acme.headers['x-cache']).toBe('miss');
    expect(acme.json<{ results: Array<{ title: string }> }>().results.map((r) => r.title)).toEqual(['Acme handbook']);
    // A read-only key searches too (a POST that writes nothing), and shares its tenant's cached answers.
    expect((await search('acmeReader', { query: 'refunds' })).headers['x-cache']).toBe('hit');

    const globex = await search('globex', { query: 'refunds' });
    expect(globex.headers['x-cache']).toBe('miss');
    // The worker was asked for the query's embedding on Globex's behalf: a service token naming its tenant, not
    // the caller's own key.
    const authorization = worker.authorizations.at(-1) ?? '';
    expect(authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    expect(authorization).not.toContain(keys.globex);
    const claims = JSON.parse(Buffer.from(authorization.split('.')[1]!, 'base64url').toString()) as { tenant: string };
    expect(claims.tenant).toBe('globex');
    expect(globex.json<{ results: Array<{ title: string }> }>().results.map((r) => r.title)).toEqual(['Globex handbook']);

    const context = await app.inject({ method: 'POST', url: '/api/v1/context', headers: bearer(keys.globex), payload: { query: 'refunds' } });
    expect(context.json<{ text: string }>().text).toContain('Globex refunds never.');
    expect(context.body).not.toContain('Acme');

    const tenants = (await scanKeys(raw, 'retrieval-proxy:search_results:*')).map((k) => k.split(':')[3]).sort();
    expect(tenants).toEqual(['acme', 'globex']);
  });

  it('lets the admin token invalidate a query for every tenant, and gives that token no tenant data', async () => {
    await search('acme', { query: 'refunds' });
    await search('globex', { query: 'refunds' });
    const res = await app.inject({ method: 'DELETE', url: '/api/v1/cache/search/refunds', headers: bearer(ADMIN_TOKEN) });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ pattern: 'refunds', removed: 2 });
    expect((await search('acme', { query: 'refunds' })).headers['x-cache']).toBe('miss');
    // The bootstrap token belongs to no tenant: it is not an anonymous read of one.
    const bootstrap = await app.inject({ method: 'GET', url: '/api/v1/documents', headers: bearer(ADMIN_TOKEN) });
    expect(errorOf(bootstrap)).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(errorOf(bootstrap).message).toMatch(/belongs to no tenant/);
    const bootstrapSearch = await app.inject({ method: 'POST', url: '/api/v1/search', headers: bearer(ADMIN_TOKEN), payload: { query: 'refunds' } });
    expect(bootstrapSearch.statusCode).toBe(403);
  });
});
