import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface Child {
  readonly proc: ChildProcess;
  /** Sends one message and resolves with the child's reply of the same id. */
  request<T>(msg: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Resolves with the first unsolicited message (e.g. { ready: true }). */
  firstMessage<T>(timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

let seq = 0;

/** Forks dist/<name>.js beside this file with an IPC channel; replies carry the request's id, errors come back as { error }. */
export function forkChild(name: string, args: unknown): Child {
  const file = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  const proc = fork(file, [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const unsolicited: unknown[] = [];
  const waiters: Array<(v: unknown) => void> = [];
  let exited: Error | undefined;

  proc.on('message', (m: { id?: number; error?: string }) => {
    if (typeof m?.id === 'number' && pending.has(m.id)) {
      const p = pending.get(m.id)!;
      pending.delete(m.id);
      if (m.error) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m);
      return;
    }
    const w = waiters.shift();
    if (w) w(m);
    else unsolicited.push(m);
  });
  proc.on('exit', (code, signal) => {
    exited = new Error(`${name} exited (code ${code}, signal ${signal})`);
    for (const p of pending.values()) p.reject(exited);
    pending.clear();
  });

  const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${name}: no answer to ${what} within ${ms} ms`)), ms);
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });

  return {
    proc,
    request<T>(msg: Record<string, unknown>, timeoutMs = 120_000): Promise<T> {
      if (exited) return Promise.reject(exited);
      const id = ++seq;
      const p = new Promise<T>((resolve, reject) => pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
      proc.send({ ...msg, id });
      return withTimeout(p, timeoutMs, String(msg.type ?? 'request'));
    },
    firstMessage<T>(timeoutMs = 30_000): Promise<T> {
      if (unsolicited.length) return Promise.resolve(unsolicited.shift() as T);
      if (exited) return Promise.reject(exited);
      const p = new Promise<T>((resolve, reject) => {
        waiters.push(resolve as (v: unknown) => void);
        proc.once('exit', () => reject(exited ?? new Error(`${name} exited`)));
      });
      return withTimeout(p, timeoutMs, 'startup');
    },
    async stop(): Promise<void> {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const done = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await done;
      clearTimeout(t);
    },
  };
}

/** Child side: answers each request with the handler's result, or { error } when it throws. */
export function serveRequests(handler: (msg: Record<string, unknown>) => Promise<Record<string, unknown>>): void {
  process.on('message', (msg: Record<string, unknown>) => {
    handler(msg).then(
      (res) => process.send?.({ ...res, id: msg.id }),
      (err: unknown) => process.send?.({ id: msg.id, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

export function childArgs<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}
