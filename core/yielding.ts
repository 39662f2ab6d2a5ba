/** How long a yielding loop runs before it lets the event loop go round. */
const SLICE_MS = 10;

/**
 * Runs `steps` (a generator that yields wherever it may pause) to its end, letting the event
 * loop run (timers, I/O, lease keepalive replies, other calls) whenever it has been busy for
 * about SLICE_MS: model-sized work then never holds a role's main thread for long at a time.
 */
export async function runYielding<T>(steps: Generator<unknown, T>): Promise<T> {
  let since = performance.now();
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    if (performance.now() - since >= SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      since = performance.now();
    }
  }
}

/**
 * Fresh zeroed Float32Arrays of `lengths`, with a pause (a yield) after each: thousands of slice
 * arrays of a large model, each zero-filled and faulted in, took a shard most of a second.
 */
export function* zeroedArrays(lengths: readonly number[]): Generator<void, Float32Array[]> {
  const out: Float32Array[] = [];
  for (const n of lengths) {
    out.push(new Float32Array(n));
    yield;
  }
  return out;
}
