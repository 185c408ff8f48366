import { expect, it } from 'vitest';
import { useFixture } from './helpers.js';

const f = useFixture(10);

it('documents every route with its tag and summary in /docs/json, and names what is wrong in a bad body', async () => {
  const res = await f.app.inject({ method: 'GET', url: '/docs/json' });
  expect(res.statusCode).toBe(200);
  const paths = res.json().paths as Record<string, Record<string, { tags?: string[]; summary?: string }>>;
  const ours = [
    ['post', '/api/v1/agents'],
    ['get', '/api/v1/agents'],
    ['get', '/api/v1/agents/{id}'],
    ['delete', '/api/v1/agents/{id}'],
    ['post', '/api/v1/agents/{agentId}/conversations'],
    ['get', '/api/v1/agents/{agentId}/conversations'],
    ['delete', '/api/v1/agents/{agentId}/conversations'],
    ['get', '/api/v1/conversations/{id}'],
    ['delete', '/api/v1/conversations/{id}'],
    ['post', '/api/v1/conversations/{id}/messages'],
    ['get', '/api/v1/conversations/{id}/messages'],
    ['get', '/api/v1/agents/{id}/memory'],
    ['delete', '/api/v1/agents/{id}/memory'],
  ] as const;
  for (const [method, path] of ours) {
    const op = paths[path]?.[method];
    expect(op, `${method} ${path}`).toBeDefined();
    expect(op!.summary).toBeTruthy();
    expect(op!.tags?.length).toBeGreaterThan(0);
  }
  const bad = await f.app.inject({ method: 'POST', url: '/api/v1/agents', payload: { settings: { filters: { 'bad key': 1 } } } });
  expect(bad.statusCode).toBe(400);
  expect(bad.json().message).toBe("body must have required property 'name'");
});
