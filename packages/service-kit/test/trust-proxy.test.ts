import { describe, expect, it } from 'vitest';
import { BaseConfig, createService, loadConfig } from '../src/index.js';

async function clientAddress(trustProxy: string | undefined, headers: Record<string, string>): Promise<string> {
  const config = loadConfig(BaseConfig, { env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', ...(trustProxy ? { TRUST_PROXY: trustProxy } : {}) } });
  const app = await createService({ name: 'trust-proxy-test', version: '0.0.0', config, logger: false, docs: false });
  app.get('/ip', async (req) => ({ ip: req.ip }));
  try {
    return (await app.inject({ url: '/ip', remoteAddress: '10.0.0.2', headers })).json().ip as string;
  } finally {
    await app.close();
  }
}

describe('TRUST_PROXY', () => {
  it('unset: the socket address, whatever X-Forwarded-For claims', async () => {
    expect(await clientAddress(undefined, { 'x-forwarded-for': '203.0.113.7' })).toBe('10.0.0.2');
  });

  it('uniquelocal (what compose sets): the address the balancer in front added, not one a client wrote before it', async () => {
    expect(await clientAddress('uniquelocal', { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' })).toBe('203.0.113.7');
  });

  it('a CIDR: trusted only when the socket is the balancer', async () => {
    expect(await clientAddress('10.0.0.0/8', { 'x-forwarded-for': '203.0.113.7' })).toBe('203.0.113.7');
    expect(await clientAddress('192.168.0.0/16', { 'x-forwarded-for': '203.0.113.7' })).toBe('10.0.0.2');
  });

  it('refuses a value that is none of these, naming the variable', () => {
    expect(() => loadConfig(BaseConfig, { env: { TRUST_PROXY: 'every one; of them' } })).toThrow(/TRUST_PROXY/);
  });
});
