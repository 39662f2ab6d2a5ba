import type { Counter, Gauge, LabelValues } from 'prom-client';

/** One labelled value read from a process's state at scrape time. */
export interface Sample<T extends string> {
  labels: LabelValues<T>;
  value: number;
}

/**
 * Sets a collect()-based gauge to exactly `samples`: values are read from live state at each
 * scrape, so a trial the process no longer holds loses its series instead of freezing it.
 * Non-finite values are left out (an absent series, rather than a NaN that breaks queries).
 */
export function fillGauge<T extends string>(gauge: Gauge<T>, samples: Iterable<Sample<T>>): void {
  gauge.reset();
  for (const { labels, value } of samples) if (Number.isFinite(value)) gauge.set(labels, value);
}

/**
 * The same for a counter whose running total lives in the process's own state (a trial's batch
 * counts, a shard's refusals): the total is copied in, never incremented twice.
 */
export function fillCounter<T extends string>(
  counter: Counter<T>,
  samples: Iterable<Sample<T>>,
): void {
  counter.reset();
  for (const { labels, value } of samples)
    if (Number.isFinite(value) && value >= 0) counter.inc(labels, value);
}

/**
 * Calls `read` at most once per event-loop turn. prom-client runs every collect() of a scrape in
 * one turn, so the families of one scrape share one snapshot: consistent with each other, and
 * the state is walked once rather than once per family.
 */
export function oncePerTurn<T>(read: () => T): () => T {
  let cached: { value: T } | undefined;
  return () => {
    if (!cached) {
      cached = { value: read() };
      setImmediate(() => (cached = undefined));
    }
    return cached.value;
  };
}
