import type { RedisRunner } from './runner.js';
import type { CacheHealth } from './types.js';

/** Above this PING round trip the cache reports itself degraded. */
export const SLOW_PING_MS = 100;

/**
 * PING outside the circuit breaker (health must see Redis even while the circuit is open), bounded by the
 * command timeout. down: no answer; degraded: slow, or the circuit is not closed; up otherwise.
 */
export async function checkHealth(runner: RedisRunner): Promise<CacheHealth> {
  const started = process.hrtime.bigint();
  try {
    await runner.probe((c) => c.ping());
    const latency = Number(process.hrtime.bigint() - started) / 1e6;
    const circuit = runner.breaker.state;
    const status = latency > SLOW_PING_MS || circuit !== 'closed' ? 'degraded' : 'up';
    return { status, latency_ms: Math.round(latency * 100) / 100, circuit };
  } catch (err) {
    return { status: 'down', latency_ms: null, circuit: runner.breaker.state, error: String((err as Error)?.message ?? err) };
  }
}
