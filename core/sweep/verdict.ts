/**
 * Errors (1 − accuracy) of one epoch on each split. `trainDev` is a held-out slice of the
 * training distribution; without it variance and data mismatch cannot be told apart.
 */
export interface SplitErrors {
  train: number;
  trainDev?: number | null;
  validation: number;
}

export type Diagnosis = 'avoidable_bias' | 'variance' | 'data_mismatch' | 'none';

export interface Verdict {
  humanError: number | null;
  /** train − human error; with no human error, the train error itself (see biasAgainstZero). */
  avoidableBias: number;
  /** True when no human error was given, so avoidable bias is measured against 0. */
  biasAgainstZero: boolean;
  /** train-dev − train; without train-dev, validation − train (which then includes mismatch). */
  variance: number;
  /** validation − train-dev; NaN without train-dev. */
  dataMismatch: number;
  /** The largest positive gap, or 'none' when no gap is positive. */
  largest: Diagnosis;
  advice: string;
  /** One line for reports and the CLI. */
  summary: string;
}

/** The basic recipe's remedies for each gap. */
export const ADVICE: Readonly<Record<Diagnosis, string>> = {
  avoidable_bias:
    'a bigger model (more hidden units or layers), training longer, or a better optimizer (Adam, a tuned learning rate)',
  variance: 'more data, or regularization (L2, dropout, data augmentation)',
  data_mismatch:
    'training data more like the validation data (error analysis of the mismatch; collect or synthesize similar examples)',
  none: 'nothing: every gap is closed',
};

const LABELS: Readonly<Record<Diagnosis, string>> = {
  avoidable_bias: 'avoidable bias',
  variance: 'variance',
  data_mismatch: 'data mismatch',
  none: 'none',
};

const TIE = 1e-9;

function percent(v: number): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : 'n/a';
}

/**
 * The bias/variance verdict of the notes: avoidable bias = train − human, variance = train-dev
 * − train, data mismatch = validation − train-dev; the largest names the problem and the basic
 * recipe gives the advice. Equal gaps go to bias first, as the recipe fixes bias before variance.
 * Judge the epoch that counts (the trial's best).
 */
export function biasVarianceVerdict(errors: SplitErrors, humanError?: number | null): Verdict {
  const human = humanError ?? null;
  const trainDev = errors.trainDev ?? NaN;
  const hasTrainDev = Number.isFinite(trainDev);
  const gaps: Array<[Diagnosis, number]> = [
    ['avoidable_bias', errors.train - (human ?? 0)],
    ['variance', (hasTrainDev ? trainDev : errors.validation) - errors.train],
    ['data_mismatch', hasTrainDev ? errors.validation - trainDev : NaN],
  ];
  let largest: Diagnosis = 'none';
  let size = 0;
  for (const [kind, gap] of gaps) {
    // Gaps within rounding of each other (0.03 − 0.01 vs 0.05 − 0.03) count as equal.
    if (gap > size + TIE) [largest, size] = [kind, gap];
  }
  const bias = gaps[0][1];
  const parts = [
    `avoidable bias ${percent(bias)}${human === null ? ' (against 0: no human_error given)' : ''}`,
    `variance ${percent(gaps[1][1])}${hasTrainDev ? '' : ' (no train-dev split: includes mismatch)'}`,
    ...(hasTrainDev ? [`data mismatch ${percent(gaps[2][1])}`] : []),
  ];
  const head = largest === 'none' ? 'no gap to close' : `${LABELS[largest]} dominates`;
  return {
    humanError: human,
    avoidableBias: bias,
    biasAgainstZero: human === null,
    variance: gaps[1][1],
    dataMismatch: gaps[2][1],
    largest,
    advice: ADVICE[largest],
    summary: `${head} (${parts.join(', ')})${largest === 'none' ? '' : `: try ${ADVICE[largest]}`}`,
  };
}
