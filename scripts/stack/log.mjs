// What npm start prints: its own lines, and the children's output prefixed with their names, pino JSON
// made short for a terminal.
import { relative } from 'node:path';
import { createInterface } from 'node:readline';

const tty = process.stdout.isTTY && !process.env.NO_COLOR;
export const paint = (code, text) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);

/** A path as short as it can be said from here: relative below the working directory, else absolute. */
export const rel = (p) => {
  const r = relative(process.cwd(), p);
  return r === '' ? '.' : r.startsWith('..') ? p : r;
};

export function say(message) {
  console.log(`${paint(1, '[stack]')} ${message}`);
}

export function fail(message) {
  console.error(`${paint('1;31', '[stack]')} ${message}`);
}

const LEVELS = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const LEVEL_COLORS = { 40: 33, 50: 31, 60: 31 };
const QUIET_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'service', 'name', 'v']);

/** A pino JSON line made short for a terminal; any other line as it is. */
export function formatLine(line) {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line);
    if (typeof entry !== 'object' || entry === null || typeof entry.level !== 'number') return line;
    const level = (LEVELS[entry.level] ?? String(entry.level)).padEnd(5);
    const rest = Object.fromEntries(Object.entries(entry).filter(([k]) => !QUIET_FIELDS.has(k)));
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    return `${paint(LEVEL_COLORS[entry.level] ?? 2, level)} ${entry.msg ?? ''}${extra}`;
  } catch {
    return line;
  }
}

export function pipeOutput(label, color, child) {
  const prefix = paint(color, `[${label}]`);
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      console.log(`${prefix} ${formatLine(line)}`);
    });
  }
}
