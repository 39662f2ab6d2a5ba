import { optimizerFor } from './optimizers';
import type { ConsistencyMode } from './trial-shard';

/**
 * Scratch copies for pushes and pulls in flight over chunk streams (a push's gradient is
 * assembled whole before it applies; a pull streams a copy). Same-host pushes and pulls need
 * none: they read and write the worker's segment a piece at a time.
 */
const IN_FLIGHT_COPIES = 2;
/** Sync steps a shard may gather at once: a sync lease reaches up to 4 steps ahead. */
const GATHERING_STEPS = 4;
/** Over this many bytes of slices on a shard, a trial is large: memory goes before concurrency. */
const LARGE_TRIAL_BYTES = 64 << 20;

/**
 * Whether a trial of `elements` values here is large: it keeps one epoch-end snapshot, not two,
 * and its chunk pulls stream the live arrays (holding its updates) instead of a copy.
 */
export function isLargeTrial(elements: number): boolean {
  return elements * 4 > LARGE_TRIAL_BYTES;
}

/**
 * Evaluation snapshots a shard keeps of a trial of `elements` values here: the two newest epochs'
 * ends, so an evaluation still running (or run again) when the next epoch ends keeps its values;
 * a large trial keeps only the newest, and an evaluation that outlives it reads the current values.
 */
export function snapshotsKept(elements: number): number {
  return isLargeTrial(elements) ? 1 : 2;
}

/**
 * The most memory a trial's slices of `elements` float32 values take on a shard: the values and
 * the optimizer's state; its evaluation snapshots; the scratch of chunk-stream pushes and pulls
 * in flight; and in sync mode the running sums of the steps being gathered. A checkpoint takes
 * nothing: it streams from the live arrays. Admission control refuses a trial whose footprint
 * does not fit, rather than letting the shard be OOM-killed with every other trial it holds.
 */
export function trialFootprintBytes(
  elements: number,
  optimizerKind: string,
  mode: ConsistencyMode,
): number {
  const copies =
    1 +
    optimizerFor(optimizerKind).stateSize +
    snapshotsKept(elements) +
    IN_FLIGHT_COPIES +
    (mode === 'sync' ? GATHERING_STEPS : 0);
  return elements * 4 * copies;
}
