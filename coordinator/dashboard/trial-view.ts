import type { TrialStatus } from '../../proto/gen/caviar/v1/TrialStatus';
import { trialHyper } from '../../core/trial-hyper';
import { epochMeasures, type EpochMeasures } from '../../core/epoch-measures';

/** One epoch of a trial's learning curve, as the page plots it. */
export interface EpochView extends EpochMeasures {
  epoch: number;
  lr: number;
  seconds: number;
}

/** What /api/trials says about one trial: plain numbers and strings, nothing Long-typed. */
export interface TrialView {
  trial: string;
  status: string;
  sweep: string;
  round: number;
  /** The sampled hyper-parameters of a sweep trial; for a lone trial, its main settings. */
  hyper: Record<string, unknown>;
  model: string;
  dataset: string;
  epoch: number;
  epochs: number;
  batches_done: number;
  batches_per_epoch: number;
  examples: number;
  seconds: number;
  examples_per_s: number;
  /** The epoch with the highest validation accuracy, or null before the first epoch ends. */
  best: { epoch: number; val_accuracy: number; val_loss: number } | null;
  verdict: string;
  stop_reason: string;
  error: string;
  history: EpochView[];
}

const n = (v: unknown): number => (v === undefined || v === null ? 0 : Number(v));

export function trialView(s: TrialStatus): TrialView {
  const history: EpochView[] = (s.history ?? []).map((h) => ({
    epoch: n(h.epoch),
    ...epochMeasures(h, 0),
    lr: n(h.lr),
    seconds: n(h.seconds),
  }));
  const best = history.reduce<EpochView | null>(
    (top, h) => (top === null || h.val_accuracy > top.val_accuracy ? h : top),
    null,
  );
  const seconds = n(s.seconds);
  return {
    trial: s.trial ?? '',
    status: s.status ?? '',
    sweep: s.sweep ?? '',
    round: n(s.round),
    hyper: trialHyper(s),
    model: s.spec?.model ?? '',
    dataset: s.spec?.dataset ?? '',
    epoch: n(s.epoch),
    epochs: n(s.spec?.epochs),
    batches_done: n(s.batches_done),
    batches_per_epoch: n(s.batches_per_epoch),
    examples: n(s.examples),
    seconds,
    examples_per_s: seconds > 0 ? n(s.examples) / seconds : 0,
    best: best && { epoch: best.epoch, val_accuracy: best.val_accuracy, val_loss: best.val_loss },
    verdict: s.verdict ?? '',
    stop_reason: s.stop_reason ?? '',
    error: s.error ?? '',
    history,
  };
}
