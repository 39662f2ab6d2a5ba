import { optimizerFor } from './optimizers';
import type { ConsistencyMode } from './trial-shard';

/** Scratch copies a shard keeps for pushes and pulls in flight (its buffer pool, in practice). */
const IN_FLIGHT_COPIES = 4;
/** Evaluation snapshots a shard keeps per trial (the two newest epochs' ends). */
const SNAPSHOT_COPIES = 2;
/** Sync steps a shard may gather at once: a sync lease reaches up to 4 steps ahead. */
const GATHERING_STEPS = 4;

/**
 * The most memory a trial's slices of `elements` float32 values take on a shard, as the shard
 * holds them today: the values and the optimizer's state; two evaluation snapshots; a checkpoint
 * save's copy of values and state plus the encoded buffer of the same size; the scratch buffers
 * of pushes and pulls in flight; and in sync mode the running sums of the steps being gathered.
 * Admission control refuses a trial whose footprint does not fit, rather than letting the shard
 * be OOM-killed with every other trial it holds.
 */
export function trialFootprintBytes(
  elements: number,
  optimizerKind: string,
  mode: ConsistencyMode,
): number {
  const state = optimizerFor(optimizerKind).stateSize;
  const copies =
    1 +
    state +
    SNAPSHOT_COPIES +
    2 * (1 + state) +
    IN_FLIGHT_COPIES +
    (mode === 'sync' ? GATHERING_STEPS : 0);
  return elements * 4 * copies;
}
