import type { EpochRecord } from '../proto/gen/caviar/v1/EpochRecord';
import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import { isBetter, metricDirection, type Objective, type TrialOutcome } from '../core/sweep';

/** The per-epoch metrics of core/sweep's EPOCH_METRICS, from one epoch record. */
export function epochMetrics(e: EpochRecord): Record<string, number> {
  const val = Number(e.val_accuracy ?? NaN);
  const train = Number(e.train_accuracy ?? NaN);
  const dev = Number(e.train_dev_accuracy ?? NaN);
  return {
    val_accuracy: val,
    val_loss: Number(e.val_loss ?? NaN),
    val_error: 1 - val,
    train_accuracy: train,
    train_loss: Number(e.train_loss ?? NaN),
    train_error: 1 - train,
    train_dev_accuracy: dev,
    train_dev_loss: Number(e.train_dev_loss ?? NaN),
    train_dev_error: 1 - dev,
  };
}

/**
 * The epoch that counts: the best by `metric` (an epoch metric), the last one for a metric that
 * is measured once per trial. -1 when the trial has no epoch yet.
 */
export function bestEpochIndex(history: readonly EpochRecord[], metric: string): number {
  let best = -1;
  for (let i = 0; i < history.length; i++) {
    const value = epochMetrics(history[i])[metric];
    if (value === undefined) return history.length - 1;
    if (best < 0 || isBetter(value, epochMetrics(history[best])[metric], metricDirection(metric)))
      best = i;
  }
  return best;
}

/** What the winner rule and the leaderboard read of a trial: its best epoch and its totals. */
export function trialOutcome(
  status: TrialStatus,
  objective: Objective,
): TrialOutcome & { bestEpoch: number } {
  const history = status.history ?? [];
  const bestEpoch = bestEpochIndex(history, objective.metric);
  const seconds = Number(status.seconds ?? 0);
  const examples = Number(status.examples ?? 0);
  return {
    trial: status.trial ?? '',
    bestEpoch,
    metrics: {
      ...(bestEpoch >= 0 ? epochMetrics(history[bestEpoch]) : {}),
      params: Number(status.params ?? NaN),
      predict_ms_p95: Number(status.predict_ms_p95 ?? NaN),
      epochs: history.length,
      seconds,
      examples_per_s: seconds > 0 ? examples / seconds : NaN,
    },
  };
}
