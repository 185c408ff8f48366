// The processes npm start runs (Redis, the services): started in their own process groups so a
// terminal's Ctrl-C reaches only this script, which stops the services first (they flush to Redis on
// close) and a Redis it started last.
import { spawn } from 'node:child_process';
import { fail, pipeOutput, say } from './log.mjs';

/** @type {{ label: string, child: import('node:child_process').ChildProcess, stopping: boolean }[]} */
const children = [];
let shuttingDown = false;

export function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child, ms) {
  return new Promise((resolve) => {
    if (exited(child)) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(entry, ms) {
  const { child } = entry;
  if (exited(child)) return;
  entry.stopping = true;
  child.kill('SIGTERM');
  if (!(await waitExit(child, ms))) {
    fail(`${entry.label} did not stop within ${ms / 1000}s; killing it`);
    child.kill('SIGKILL');
    await waitExit(child, 2000);
  }
}

/**
 * Starts `command` with its output prefixed by `label`. `onUnexpectedExit(code, signal)` runs when it
 * exits while the stack is neither stopping nor stopping it.
 */
export function startChild(label, color, command, args, { cwd, env }, onUnexpectedExit) {
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const entry = { label, child, stopping: false };
  children.push(entry);
  pipeOutput(label, color, child);
  child.on('exit', (code, signal) => {
    if (!shuttingDown && !entry.stopping) onUnexpectedExit(code, signal);
  });
  return child;
}

/** Stops services first, then a Redis this script started, and exits. */
export async function shutdown(code, reason) {
  if (shuttingDown) return;
  shuttingDown = true;
  if (reason) say(reason);
  const services = children.filter((c) => c.label !== 'redis');
  await Promise.all(services.map((c) => stopChild(c, 10_000)));
  const unclean = services.filter((c) => c.child.exitCode !== 0 && c.child.exitCode !== null);
  for (const c of unclean) fail(`${c.label} exited with code ${c.child.exitCode} while stopping`);
  const redis = children.find((c) => c.label === 'redis');
  if (redis) await stopChild(redis, 15_000);
  say('stopped');
  process.exit(code !== 0 ? code : unclean.length > 0 ? 1 : 0);
}

function killAll() {
  for (const c of children) if (!exited(c.child)) c.child.kill('SIGKILL');
}

/** Ctrl-C / SIGTERM / SIGHUP stop the stack cleanly; a second one kills it. */
export function handleSignals() {
  let interrupts = 0;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      interrupts += 1;
      if (interrupts > 1) {
        killAll();
        process.exit(130);
      }
      void shutdown(0, `${signal}: stopping (again to force)`);
    });
  }
  // Last resort if this process dies of an exception: leave no orphan behind.
  process.on('exit', killAll);
}
