import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import type { ParamInfo } from '../core/model-spec';
import type { Slice } from '../core/placement';
import { trialSpecMessage, type ResolvedTrialSpec } from '../core/trial-spec';
import { parameterCount } from '../core/model-spec';
import type { TrialRun } from './trial-run';
import type { StalenessGate } from './staleness-gate';
import { biasVarianceVerdict } from '../core/sweep';
import { bestEpochIndex, epochMetrics } from './trial-outcome';

/** Everything the coordinator keeps about one trial. */
export interface TrialRecord {
  id: string;
  spec: ResolvedTrialSpec;
  run: TrialRun;
  params: ParamInfo[];
  inputShape: number[];
  numClasses: number;
  /** Tensors of frozen layers, and their values (kept here: no shard holds them). */
  frozen: ReadonlySet<string>;
  frozenValues: ReadonlyMap<string, Float32Array>;
  slices: Slice[];
  /** ssp:N only: how far the trial's leases may run ahead of its slowest. */
  stalenessGate?: StalenessGate;
  /** Shard addresses, in the order the placement's shard numbers refer to. */
  shards: string[];
  startedAt: number;
  finishedAt?: number;
  error: string;
  batchesApplied: number;
  batchesAppliedPerShard: number[];
  pushesRefused: Record<string, number>;
  backends: Set<string>;
  /** Workers that completed at least one of the trial's tasks. */
  workers: Set<string>;
  /** Seconds the workers spent per phase, summed over tasks; apply time is the shards'. */
  timing: { compute: number; pull: number; push: number; eval: number; apply: number };
  /** Worker failures in a row; a trial that keeps failing is stopped rather than retried forever. */
  failuresInARow: number;
  /** Sweep membership: the sweep, its round, the sampled hyper-parameters (JSON). */
  sweep: string;
  round: number;
  hyperJson: string;
  /** Why the trial was stopped (early stopping, the user), if it was. */
  stopReason: string;
  /** The metric that picks the trial's best epoch, and the human-level error for the verdict. */
  objectiveMetric: string;
  humanError: number | null;
  /** The newest evaluation's one-example inference latency, p95 (ms; 0 before the first). */
  predictMsP95: number;
  /** The reconciliation with the shards in flight, if any (one at a time per trial). */
  reconciling?: Promise<void>;
  /** The trained parameters, fetched from the shards when the trial ends (the shards then drop them). */
  finalParams?: Map<string, Float32Array>;
}

/** The bias/variance verdict of the best epoch, one line ("" before the first epoch). */
function verdictLine(record: TrialRecord): string {
  const best = bestEpochIndex(record.run.history, record.objectiveMetric);
  if (best < 0) return '';
  const m = epochMetrics(record.run.history[best]);
  const errors = { train: m.train_error, trainDev: m.train_dev_error, validation: m.val_error };
  return biasVarianceVerdict(errors, record.humanError).summary;
}

export const TERMINAL_STATES = new Set(['completed', 'failed', 'stopped']);

export function trialStatus(record: TrialRecord, now = Date.now()): TrialStatus {
  const { run } = record;
  const status =
    run.state === 'finishing'
      ? 'running'
      : run.paused && run.state === 'running'
        ? 'paused'
        : run.state;
  return {
    trial: record.id,
    status,
    spec: trialSpecMessage(record.spec),
    epoch: run.epoch,
    batches_done: run.batchesDone,
    batches_per_epoch: run.batchesPerEpoch,
    examples: run.examples,
    seconds: ((record.finishedAt ?? now) - record.startedAt) / 1000,
    history: run.history,
    error: record.error,
    batches_scheduled: run.scheduled,
    batches_applied: record.batchesApplied,
    // Trainable, as Keras's summary counts them: BatchNorm's moving statistics are state.
    params: parameterCount(record.params.filter((p) => p.movingAverage === undefined)),
    backends: [...record.backends].sort(),
    last_loss: Number.isFinite(run.lastLoss) ? run.lastLoss : 0,
    batches_requeued: run.requeued,
    input_shape: record.inputShape,
    num_classes: record.numClasses,
    compute_seconds: record.timing.compute,
    pull_seconds: record.timing.pull,
    push_seconds: record.timing.push,
    eval_seconds: record.timing.eval,
    apply_seconds: record.timing.apply,
    workers: record.workers.size,
    pushes_refused: record.pushesRefused,
    batches_applied_per_shard: record.batchesAppliedPerShard,
    sweep: record.sweep,
    round: record.round,
    hyper_json: record.hyperJson,
    stop_reason: record.stopReason,
    best_epoch: Math.max(0, bestEpochIndex(run.history, record.objectiveMetric)),
    verdict: verdictLine(record),
    predict_ms_p95: record.predictMsP95,
    frozen_params: parameterCount(
      record.params.filter((p) => p.movingAverage === undefined && record.frozen.has(p.name)),
    ),
  };
}
