/** Which way a metric gets better. */
export type Direction = 'maximize' | 'minimize';

/**
 * Metrics measured once per epoch on each split (error = 1 − accuracy). Early stopping watches
 * one of these.
 */
export const EPOCH_METRICS = [
  'val_accuracy',
  'val_loss',
  'val_error',
  'train_accuracy',
  'train_loss',
  'train_error',
  'train_dev_accuracy',
  'train_dev_loss',
  'train_dev_error',
] as const;

/**
 * Every metric an objective or a constraint may name: the per-epoch ones plus what a trial
 * reports once: `params` (trainable parameters), `predict_ms_p95` (95th-percentile inference
 * latency of one example, measured on the validation set), `epochs` (epochs run), `seconds`
 * (wall time), `examples_per_s`.
 */
export const METRIC_NAMES: readonly string[] = [
  ...EPOCH_METRICS,
  'params',
  'predict_ms_p95',
  'epochs',
  'seconds',
  'examples_per_s',
];

export function isMetricName(name: string): boolean {
  return METRIC_NAMES.includes(name);
}

export function isEpochMetric(name: string): boolean {
  return (EPOCH_METRICS as readonly string[]).includes(name);
}

/** The direction in which a metric improves: accuracies and throughput up, the rest down. */
export function metricDirection(name: string): Direction {
  return name.endsWith('_accuracy') || name === 'examples_per_s' ? 'maximize' : 'minimize';
}

/**
 * Whether `a` is strictly better than `b` in `direction`. A non-finite value (a diverged loss,
 * a missing metric) is worse than any finite one.
 */
export function isBetter(a: number, b: number, direction: Direction): boolean {
  if (!Number.isFinite(a)) return false;
  if (!Number.isFinite(b)) return true;
  return direction === 'maximize' ? a > b : a < b;
}

/** A sort comparator putting better values first and non-finite ones last. */
export function compareMetric(a: number, b: number, direction: Direction): number {
  if (isBetter(a, b, direction)) return -1;
  if (isBetter(b, a, direction)) return 1;
  return 0;
}
