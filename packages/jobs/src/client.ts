/**
 * The client side of a job's event stream (GET /api/v1/jobs/:id/events): the plugin writes each event as
 * `event: <name>\ndata: <JSON>\n\n`, a `progress` one whenever the job changes, then one `completed`, `failed` or
 * `cancelled`, and ends the stream. Free of the queue and its dependencies, for benchmarks, tests and other clients.
 */

/** One event of the stream: its name and its parsed data (the job as the routes show it). */
export interface JobEvent<D = unknown> {
  event: string;
  data: D;
}

/** The names of the events that end a job's stream. */
export const FINAL_JOB_EVENTS: readonly string[] = ['completed', 'failed', 'cancelled'];

/** Yields the events of a response body as they arrive, to the end of the stream. */
export async function* readJobEvents<D = unknown>(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncGenerator<JobEvent<D>> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const message = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const event = /^event: (\w+)$/m.exec(message)?.[1];
      const data = /^data: (.*)$/m.exec(message)?.[1];
      if (event && data) yield { event, data: JSON.parse(data) as D };
    }
  }
}

/**
 * Follows a job's stream at `url` to its end: the HTTP status and content type of the answer, and every event
 * (none when the status is not 200). `onEvent` sees each event as it comes.
 */
export async function followJobEvents<D = unknown>(
  url: string,
  init: RequestInit = {},
  onEvent: (e: JobEvent<D>) => void = () => undefined,
): Promise<{ status: number; type: string | null; events: Array<JobEvent<D>> }> {
  const res = await fetch(url, init);
  const events: Array<JobEvent<D>> = [];
  if (res.status === 200 && res.body) {
    for await (const e of readJobEvents<D>(res.body)) {
      events.push(e);
      onEvent(e);
    }
  } else {
    await res.body?.cancel();
  }
  return { status: res.status, type: res.headers.get('content-type'), events };
}
