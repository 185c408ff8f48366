// Step 5 of npm start: the three services, each `node dist/server.js` in its own folder, and the wait
// for every /ready.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fail, rel, say } from './log.mjs';
import { root } from './paths.mjs';
import { portFree } from './ports.mjs';
import { exited, shutdown, startChild } from './supervise.mjs';

export const SERVICES = [
  { name: 'multimodal-worker', portVar: 'MULTIMODAL_WORKER_PORT', port: 8001, color: 36 },
  { name: 'retrieval-proxy', portVar: 'RETRIEVAL_PROXY_PORT', port: 8002, color: 35 },
  { name: 'ai-agents', portVar: 'AI_AGENTS_PORT', port: 8003, color: 33 },
];

function servicePort(svc) {
  const raw = process.env[svc.portVar];
  if (raw === undefined || raw === '') return svc.port;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    fail(`${svc.portVar} must be a port number, got ${JSON.stringify(raw)}`);
    process.exit(1);
  }
  return port;
}

/** Where each service will listen; exits with a message when one is not built or its port is taken. */
export async function planServices(host) {
  const probeHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const services = SERVICES.map((svc) => {
    const port = servicePort(svc);
    const url = `http://${probeHost.includes(':') ? `[${probeHost}]` : probeHost}:${port}`;
    return { ...svc, port, url, dir: join(root, 'services', svc.name), child: undefined };
  });
  for (const svc of services) {
    if (!existsSync(join(svc.dir, 'dist', 'server.js'))) {
      fail(`${rel(join(svc.dir, 'dist', 'server.js'))} is missing: run npm start without --no-build.`);
      process.exit(1);
    }
    if (!(await portFree(svc.port, probeHost))) {
      fail(`port ${svc.port} for ${svc.name} is taken. Stop what uses it, or pick another: ${svc.portVar}=<port> npm start`);
      process.exit(1);
    }
  }
  return services;
}

/** Starts every service with `env`; one dying on its own stops the whole stack. */
export function startServices(services, env) {
  for (const svc of services) {
    say(`starting ${svc.name} on ${svc.url}`);
    // Working directory: the service's folder, so a root .env made for docker compose is not read.
    svc.child = startChild(svc.name, svc.color, process.execPath, [join('dist', 'server.js')], { cwd: svc.dir, env: { ...env, PORT: String(svc.port) } }, (code, signal) =>
      void shutdown(1, `${svc.name} exited unexpectedly (${code ?? signal}); stopping the stack`),
    );
  }
}

/** True once every service answers 200 on /ready; false (having said why) on a death or the timeout. */
export async function waitReady(services, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const last = new Map();
  const pending = new Set(services);
  while (pending.size > 0) {
    for (const svc of pending) {
      if (exited(svc.child)) {
        fail(`${svc.name} exited (code ${svc.child.exitCode ?? svc.child.signalCode}) before it was ready; its output is above.`);
        return false;
      }
    }
    await Promise.all(
      [...pending].map(async (svc) => {
        try {
          const res = await fetch(`${svc.url}/ready`, { signal: AbortSignal.timeout(2000) });
          const body = await res.text();
          if (res.status === 200) pending.delete(svc);
          else last.set(svc.name, `HTTP ${res.status} ${body.slice(0, 300)}`);
        } catch (err) {
          last.set(svc.name, err instanceof Error ? err.message : String(err));
        }
      }),
    );
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      fail(`not ready after ${timeoutMs / 1000}s:`);
      for (const svc of pending) fail(`  ${svc.name} ${svc.url}/ready: ${last.get(svc.name) ?? 'no answer'}`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return true;
}
