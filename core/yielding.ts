/** How long a yielding loop runs before it lets the event loop go round. */
const SLICE_MS = 10;

/**
 * Tells a long loop when it has held the event loop for about SLICE_MS, and lets it go round:
 * model-sized work then never holds a role's main thread for long at a time.
 */
export class EventLoopPacer {
  private since = performance.now();

  /** Lets the event loop run (timers, I/O, other calls) if the loop has been busy long enough. */
  async pause(): Promise<void> {
    if (performance.now() - this.since < SLICE_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.restart();
  }

  /** The loop just waited on something else (a stream draining): its busy time starts again. */
  restart(): void {
    this.since = performance.now();
  }
}

/** Runs `steps` (a generator that yields wherever it may pause) to its end, paced. */
export async function runYielding<T>(steps: Generator<unknown, T>): Promise<T> {
  const pacer = new EventLoopPacer();
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    await pacer.pause();
  }
}

/** Runs `steps` to its end without pausing, for callers with nothing else to let run. */
export function drain<T>(steps: Generator<unknown, T>): T {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/**
 * Fresh zeroed Float32Arrays of `lengths`, with a pause (a yield) after each: a large model has
 * thousands of slice arrays, each zero-filled and faulted in, too much for one turn of a shard's
 * event loop.
 */
export function* zeroedArrays(lengths: readonly number[]): Generator<void, Float32Array[]> {
  const out: Float32Array[] = [];
  for (const n of lengths) {
    out.push(new Float32Array(n));
    yield;
  }
  return out;
}
