import { Writable } from 'node:stream';

/** A pino destination that keeps every line written, to search logs for secrets or warnings. */
export class LogSink extends Writable {
  private readonly chunks: string[] = [];

  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    cb();
  }

  get text(): string {
    return this.chunks.join('');
  }

  /** Parsed JSON lines (non-JSON lines are skipped). */
  entries(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of this.text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not JSON
      }
    }
    return out;
  }
}
