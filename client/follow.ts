import { isRetryable } from '../core/call-status';

/** How long a watch keeps trying to reach a coordinator that went away (a restart, a takeover). */
const RECONNECT_BUDGET_MS = 60_000;

/**
 * Feeds every update of `watch()` to `onUpdate` until the stream ends, opening the watch again
 * when the coordinator goes away mid-stream (a restarted or standby coordinator serves the same
 * trials). Returns the last update.
 */
export async function follow<T>(
  first: T,
  watch: () => AsyncIterable<T>,
  onUpdate: (update: T) => void,
): Promise<T> {
  let last = first;
  let lostAt: number | undefined;
  for (;;) {
    try {
      for await (const update of watch()) {
        last = update;
        lostAt = undefined;
        onUpdate(update);
      }
      return last;
    } catch (err) {
      lostAt ??= Date.now();
      if (!isRetryable(err) || Date.now() - lostAt > RECONNECT_BUDGET_MS) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
