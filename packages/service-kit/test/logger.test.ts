import { describe, expect, it } from 'vitest';
import { createLogger, createService, redactUrl } from '../src/index.js';
import { captureStream, testConfig } from './helpers.js';

describe('logger', () => {
  it('redacts authorization headers, passwords, tokens and API keys', () => {
    const out = captureStream();
    const log = createLogger({ LOG_LEVEL: 'info', NODE_ENV: 'production' }, out.stream);
    log.info(
      {
        req: { headers: { authorization: 'Bearer s3cr3t-admin', 'user-agent': 'curl' } },
        user: { name: 'ann', password: 'hunter2' },
        config: { REDIS_PASSWORD: 'redis-pw', CACHE_ADMIN_TOKEN: 'admin-token', LLM_API_KEY: 'sk-llm' },
        body: { apiKey: 'k1', api_key: 'k2', token: 't1' },
      },
      'incoming',
    );
    const text = out.text();
    for (const secret of ['s3cr3t-admin', 'hunter2', 'redis-pw', 'admin-token', 'sk-llm', 'k1', 'k2', 't1']) expect(text).not.toContain(secret);
    const line = out.lines()[0]!;
    expect(line).toMatchObject({
      msg: 'incoming',
      req: { headers: { authorization: '[redacted]', 'user-agent': 'curl' } },
      user: { name: 'ann', password: '[redacted]' },
      config: { REDIS_PASSWORD: '[redacted]' },
    });
  });

  it("request logs from a service's routes are redacted too", async () => {
    const out = captureStream();
    const app = await createService({ name: 'log-svc', version: '1', config: testConfig(), logger: createLogger({ LOG_LEVEL: 'info' }, out.stream), defaultMetrics: false });
    app.post('/login', async (req) => {
      req.log.info({ headers: req.headers, body: req.body }, 'login attempt');
      return { ok: true };
    });
    await app.inject({ method: 'POST', url: '/login', headers: { authorization: 'Bearer abc.def' }, payload: { user: 'ann', password: 'pw-123' } });
    await app.close();
    const line = out.lines().find((l) => l.msg === 'login attempt')!;
    expect(line).toMatchObject({ headers: { authorization: '[redacted]' }, body: { user: 'ann', password: '[redacted]' } });
    expect(line.reqId).toEqual(expect.any(String));
    expect(out.text()).not.toContain('pw-123');
    expect(out.text()).not.toContain('abc.def');
  });

  it('writes JSON lines when stdout is not a TTY', () => {
    const out = captureStream();
    createLogger({ LOG_LEVEL: 'debug' }, out.stream).debug('hello');
    expect(out.lines()[0]).toMatchObject({ level: 20, msg: 'hello' });
  });

  it('redactUrl strips passwords from URLs', () => {
    expect(redactUrl('redis://default:p%40ss@redis:6379/2')).toBe('redis://default:***@redis:6379/2');
    expect(redactUrl('rediss://:only-pw@host')).toBe('rediss://:***@host');
    expect(redactUrl('failed to reach http://u:p@peer:8001/x and redis://r:q@h')).toBe('failed to reach http://u:***@peer:8001/x and redis://r:***@h');
    expect(redactUrl('redis://host:6379')).toBe('redis://host:6379');
  });
});
