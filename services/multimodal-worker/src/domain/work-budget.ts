import { setImmediate as yieldToLoop } from 'node:timers/promises';

/**
 * Long loops over a request's data (embedding, hashing, encoding an answer) call spend() after each
 * step; once `budget` units of work have passed it yields to the event loop, so one large request
 * never holds /health or the other requests for more than one slice.
 */
export class WorkBudget {
  private spent = 0;

  constructor(private readonly budget: number) {}

  async spend(units: number): Promise<void> {
    this.spent += units;
    if (this.spent < this.budget) return;
    this.spent = 0;
    await yieldToLoop();
  }
}

/** Characters of text one slice may process: about 4 ms of local embedding on one core. */
export const CHARS_PER_SLICE = 50_000;
