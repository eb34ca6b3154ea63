/** Reconnect delays: exponential with "equal jitter" so that a fleet of learners dropped by
 * the same restart does not come back in lockstep, yet nobody waits less than half the step. */

export interface BackoffOptions {
  /** First step, in ms. Default 500. */
  readonly baseMs: number;
  /** Largest step, in ms. Default 15 000. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000 };

/** The delay before reconnect attempt `attempt` (0-based); `random` returns [0, 1). */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number): number {
  const step = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + (random() * step) / 2);
}
