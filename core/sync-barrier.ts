/**
 * The sync-mode barrier, in one place for the coordinator, the workers and the shards.
 *
 * A sync trial's epoch is cut into steps of `quorum` consecutive batches (the last may be
 * shorter); steps are numbered across epochs. A shard averages a step's gradients and applies
 * them as one update, strictly in step order, so its version counts the steps it has applied:
 * version v means steps 0..v-1 are in and step v is the next. That one fact gives every rule:
 *
 * - a batch of step t computes on the values after step t-1: its pull waits for version t;
 * - a push-pull of step t answers with the values after step t: it waits for version t + 1;
 * - a push for a step below the shard's version comes too late: that step is already applied;
 * - a shard restored from an older checkpoint is at a lower version, missing whole steps, and
 *   lacks the batches of those steps (and of a step it was gathering). The coordinator runs
 *   those batches again, oldest first, each keeping its step; their pulls must not wait, since
 *   the version they would wait for is one only they can produce.
 */

/** How an epoch's batches form steps; saved with the run, so a batch re-run later keeps its step. */
export interface EpochLayout {
  /** Batches averaged per step, fixed at the epoch's start from the live workers. */
  quorum: number;
  /** The global number of the epoch's first step. */
  stepBase: number;
}

/** Steps an epoch of `batchesPerEpoch` batches takes at `quorum` batches a step. */
export function stepsPerEpoch(batchesPerEpoch: number, quorum: number): number {
  return Math.ceil(batchesPerEpoch / quorum);
}

/** The layout of the epoch after `previous` (the first epoch when there is none). */
export function nextEpochLayout(
  previous: EpochLayout | undefined,
  batchesPerEpoch: number,
  quorum: number,
): EpochLayout {
  const stepBase = previous
    ? previous.stepBase + stepsPerEpoch(batchesPerEpoch, previous.quorum)
    : 0;
  return { quorum, stepBase };
}

/** The global step of the epoch's `batch`. */
export function stepOfBatch(layout: EpochLayout, batch: number): number {
  return layout.stepBase + Math.floor(batch / layout.quorum);
}

/** How many batches the step of the epoch's `batch` averages. */
export function stepSizeOfBatch(
  layout: EpochLayout,
  batch: number,
  batchesPerEpoch: number,
): number {
  const first = firstBatchOfStep(layout, batch);
  return Math.min(layout.quorum, batchesPerEpoch - first);
}

/** The epoch's first batch in the same step as `batch`. */
export function firstBatchOfStep(layout: EpochLayout, batch: number): number {
  return Math.floor(batch / layout.quorum) * layout.quorum;
}

/**
 * The shard version a batch of `step` pulls before computing: every earlier step applied. A
 * repair (a batch run again for a restored shard) waits for nothing.
 */
export function pullVersionOfStep(step: number, repair: boolean): number {
  return repair ? 0 : step;
}

/** The version a shard reaches once `step` is applied: what a push-pull of it waits for. */
export function versionAfterStep(step: number): number {
  return step + 1;
}

/** Whether a shard at `version` has applied `step` already (a push for it is refused). */
export function isStepApplied(step: number, version: number): boolean {
  return step < version;
}

/** A batch by epoch and index, as the coordinator and the shards' Applied answers name it. */
export interface BatchRef {
  epoch: number;
  batch: number;
}

/**
 * The completed batches some shard lacks (it restarted from an older checkpoint, or forgot a push
 * it acknowledged): to run again, in the order steps apply, oldest first. `completed` and each
 * `held` are sets of core/batches batchKey.
 */
export function batchesToRerun(
  completed: Iterable<number>,
  held: ReadonlyArray<ReadonlySet<number>>,
  batchOf: (key: number) => BatchRef,
): BatchRef[] {
  const missing: BatchRef[] = [];
  for (const key of completed) {
    if (held.some((h) => !h.has(key))) missing.push(batchOf(key));
  }
  return missing.sort((a, b) => a.epoch - b.epoch || a.batch - b.batch);
}

/**
 * How long a sync push's reply may wait at a shard for the batch's step to be applied, in
 * multiples of the batch's own compute time, within bounds. The other batches of the step started
 * about when this one did and take about as long, so a few compute times cover them; but the step
 * may also wait for a batch that nobody computes yet (its worker evaluates, died, or it is this
 * worker's next task), and then every ms waited is lost: past the wait the reply carries the
 * values as they are and the next batch pulls as usual.
 */
const STEP_WAIT_COMPUTES = 3;
const STEP_WAIT_MIN_MS = 10;
const STEP_WAIT_MAX_MS = 200;

/** The step_wait_ms of a sync push whose batch took `computeMs` to compute. */
export function stepWaitMs(computeMs: number): number {
  return Math.round(
    Math.min(STEP_WAIT_MAX_MS, Math.max(STEP_WAIT_MIN_MS, STEP_WAIT_COMPUTES * computeMs)),
  );
}

/**
 * How long a sync batch's pull may wait for the step before it, at least, and in compute times
 * of the last batch. Past that the batch goes back (a transient failure): the step may wait for
 * a batch of a worker that died, which the coordinator queues again once it notices, and which
 * this worker may be the only one left to run, but not while it waits here.
 */
const SYNC_PULL_MIN_MS = 2_000;
const SYNC_PULL_COMPUTES = 20;

/** How long a sync batch's pull waits for its step, within the batch lease of `leaseMs`. */
export function syncPullBudgetMs(leaseMs: number, lastComputeMs: number): number {
  return Math.min(leaseMs, Math.max(SYNC_PULL_MIN_MS, SYNC_PULL_COMPUTES * lastComputeMs));
}
