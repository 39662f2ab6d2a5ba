import { isRetryable } from './call-status';

export interface RetryOptions {
  /** Give up (rethrow the last error) once this much time has passed. Defaults to 30 s. */
  budgetMs?: number;
  /** First backoff ceiling; it doubles per attempt up to maxDelayMs. Defaults to 100 ms. */
  baseDelayMs?: number;
  /** Defaults to 2 s. */
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** Which errors are worth another try. Defaults to core/call-status isRetryable. */
  retryable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number) => void;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or the budget is spent. Delays
 * are "full jitter" (uniform in [0, ceiling)), so clients that failed together do not retry in
 * lockstep. `fn` must be idempotent: a push is, because it carries its (trial, epoch, batch) key.
 */
export async function withRetries<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const { budgetMs = 30_000, baseDelayMs = 100, maxDelayMs = 2_000, signal } = options;
  const retryable = options.retryable ?? isRetryable;
  const giveUpAt = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.random() * ceiling;
      if (signal?.aborted || !retryable(err) || Date.now() + delay >= giveUpAt) throw err;
      options.onRetry?.(err, attempt);
      await sleep(delay, signal);
    }
  }
}
