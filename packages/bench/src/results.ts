/** 'inconclusive': the machine's own noise (measured with nothing running) already exceeds the target. */
export type Status = 'met' | 'missed' | 'inconclusive' | 'not available' | 'error' | 'info';

/** One line of the table: a figure of ours beside the figure it is compared with, from the same run. */
export interface Row {
  id: string;
  figure: string;
  ours: string;
  baseline: string;
  /** ours / baseline, the number the target is about; null when there is none. */
  ratio: number | null;
  ratioText?: string;
  target: string;
  status: Status;
  note?: string;
}

/** Every row the table always prints, in order; a section that fails still prints its rows as "error". */
export const ROW_IDS = ['1a', '1b', '2a', '2b', '2c', '3', '4a', '4b', '5', '6', '7a', '7b'] as const;
export type RowId = (typeof ROW_IDS)[number];

export const ROW_TITLES: Record<RowId, string> = {
  '1a': 'HTTP: Redis hit (wrapJson bytes) vs no cache, req/s',
  '1b': 'HTTP: L1 hit vs no cache, req/s',
  '2a': 'getOrSet hit from Redis vs bentocache, ops/s',
  '2b': 'getOrSet hit from Redis vs cache-manager wrap, ops/s',
  '2c': 'getOrSet hit from Redis vs raw ioredis GET+JSON.parse, ops/s',
  '3': 'Stampede: loader runs, 4 procs x 250 callers, cold key',
  '4a': 'Batch 256 embeddings, 90% cached vs all-miss, latency',
  '4b': 'Batch 256 embeddings: Redis round trips per batch',
  '5': 'Clear a category: worst PING latency meanwhile',
  '6': 'Memory per 1,536-dim embedding vs JSON number array',
  '7a': 'getOrSet hit on a 3-master Cluster vs one server, ops/s',
  '7b': 'Batch 256 embeddings on a 3-master Cluster vs one server: round trips',
};

export function errorRow(id: RowId, err: unknown): Row {
  const msg = err instanceof Error ? err.message : String(err);
  return { id, figure: ROW_TITLES[id], ours: 'error', baseline: '', ratio: null, target: '', status: 'error', note: msg.split('\n')[0] };
}

export function fmtNum(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms >= 1000) return `${fmtNum(ms / 1000, 2)} s`;
  if (ms >= 100) return `${fmtNum(ms, 0)} ms`;
  if (ms >= 10) return `${fmtNum(ms, 1)} ms`;
  return `${fmtNum(ms, 2)} ms`;
}

export function fmtBytes(n: number): string {
  if (n >= 1024 * 1024) return `${fmtNum(n / 1024 / 1024, 1)} MiB`;
  if (n >= 1024) return `${fmtNum(n / 1024, 1)} KiB`;
  return `${n} B`;
}

export function fmtRatio(r: number | null): string {
  return r === null || !Number.isFinite(r) ? '—' : `${r.toFixed(2)}x`;
}

const esc = (s: string): string => s.replace(/\|/g, '\\|');

/** The one table, in Markdown so it reads in a terminal and pastes into BENCHMARKS.md as it is. */
export function renderTable(rows: Row[]): string {
  const head = ['#', 'figure', 'ours', 'compared with', 'ratio', 'target', 'result'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const cells = [r.id, r.figure, r.ours, r.baseline, r.ratioText ?? fmtRatio(r.ratio), r.target, r.status];
    lines.push(`| ${cells.map((c) => esc(c)).join(' | ')} |`);
  }
  const notes = rows.filter((r) => r.note).map((r) => `- ${r.id}: ${r.note}`);
  return notes.length ? `${lines.join('\n')}\n\nNotes:\n${notes.join('\n')}` : lines.join('\n');
}

/** "per-round ratios 0.91-1.04": how much the pairs moved between rounds, i.e. how noisy the machine was. */
export function spread(ratios: number[]): string {
  if (ratios.length < 2) return '';
  const lo = Math.min(...ratios);
  const hi = Math.max(...ratios);
  return `per-round ratios ${lo.toFixed(2)}-${hi.toFixed(2)}`;
}
