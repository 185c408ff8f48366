import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// A service as a container runs it: its own process, runServer, SIGTERM from outside.
const SERVER = `
const { BaseConfig, createService, loadConfig, runServer } = await import(${JSON.stringify(fileURLToPath(new URL('../dist/index.js', import.meta.url)))});
const config = loadConfig(BaseConfig, { env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0' } });
const app = await createService({ name: 'drain-test', version: '0.1.0', config, logger: false });
app.get('/slow', async () => { await new Promise((r) => setTimeout(r, 700)); return { done: true }; });
console.log(await runServer(app, config, { graceMs: 5000 }));
`;

describe('runServer on SIGTERM', () => {
  it('answers a request in flight, then exits 0 instead of waiting on its kept-alive connection until the grace delay kills it', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const address = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
    });

    const inFlight = fetch(`${address}/slow`); // keep-alive, as HAProxy and undici clients do
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ done: true });
    expect(res.headers.get('connection')).toBe('close');
    expect(await exited).toBe(0);
  }, 20_000);
});
