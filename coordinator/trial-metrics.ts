import { Counter, Gauge, type Registry } from 'prom-client';
import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import type { EpochRecord } from '../proto/gen/caviar/v1/EpochRecord';
import { fillCounter, fillGauge, type Sample } from '../core/metric-fill';

/** The states a trial's status gauge enumerates (one series each, 1 for the current one). */
export const TRIAL_STATES = ['queued', 'running', 'completed', 'failed', 'stopped'] as const;

const PHASES = ['compute', 'pull', 'push', 'eval', 'apply'] as const;

type TrialLabel = 'trial';
type Read = (status: TrialStatus) => number;

const num = (v: number | string | { toString(): string } | null | undefined): number =>
  v === undefined || v === null ? NaN : Number(v);

const last = (s: TrialStatus): EpochRecord | undefined => s.history?.[(s.history?.length ?? 0) - 1];

/** Per-trial gauges read from the newest epoch record: absent until the first epoch ends. */
const EPOCH_GAUGES: Array<[name: string, help: string, field: keyof EpochRecord]> = [
  ['caviar_trial_train_loss', 'Mean mini-batch loss of the last finished epoch', 'train_loss'],
  [
    'caviar_trial_train_accuracy',
    'Accuracy on a training sample at the last epoch end',
    'train_accuracy',
  ],
  ['caviar_trial_validation_loss', 'Validation loss at the last epoch end', 'val_loss'],
  ['caviar_trial_validation_accuracy', 'Validation accuracy at the last epoch end', 'val_accuracy'],
  ['caviar_trial_train_dev_loss', 'Train-dev loss at the last epoch end', 'train_dev_loss'],
  [
    'caviar_trial_train_dev_accuracy',
    'Train-dev accuracy at the last epoch end',
    'train_dev_accuracy',
  ],
];

/** Per-trial gauges read straight from the status. */
const STATUS_GAUGES: Array<[name: string, help: string, read: Read]> = [
  [
    'caviar_trial_epoch',
    'Epochs finished (validation measured); the one being trained is this plus one',
    (s) => s.history?.length ?? 0,
  ],
  [
    'caviar_trial_epoch_batches_done',
    'Mini-batches done in the current epoch',
    (s) => num(s.batches_done),
  ],
  ['caviar_trial_batches_per_epoch', 'Mini-batches per epoch', (s) => num(s.batches_per_epoch)],
  [
    'caviar_trial_step',
    'Mini-batches done over all epochs',
    (s) => num(s.epoch) * num(s.batches_per_epoch) + num(s.batches_done),
  ],
  [
    'caviar_trial_learning_rate',
    'Learning rate of the last finished epoch (the initial one before)',
    (s) => num(last(s)?.lr ?? s.spec?.optimizer?.lr),
  ],
  ['caviar_trial_last_batch_loss', 'Loss of the most recent mini-batch', (s) => num(s.last_loss)],
  [
    'caviar_trial_elapsed_seconds',
    'Seconds since the trial started (to its end once finished)',
    (s) => num(s.seconds),
  ],
  [
    'caviar_trial_examples_per_second',
    'Training examples per second, averaged since the trial started',
    (s) => (num(s.seconds) > 0 ? num(s.examples) / num(s.seconds) : NaN),
  ],
  ['caviar_trial_parameters', 'Trainable parameters of the model', (s) => num(s.params)],
  [
    'caviar_trial_workers',
    'Workers that completed at least one task of the trial',
    (s) => num(s.workers),
  ],
  [
    'caviar_trial_best_epoch',
    'Epoch with the best validation metric so far',
    (s) => num(s.best_epoch),
  ],
];

/** Per-trial totals the coordinator keeps; exported as counters. */
const STATUS_COUNTERS: Array<[name: string, help: string, read: Read]> = [
  ['caviar_trial_examples_total', 'Training examples processed', (s) => num(s.examples)],
  [
    'caviar_trial_batches_scheduled_total',
    'Mini-batches scheduled',
    (s) => num(s.batches_scheduled),
  ],
  [
    'caviar_trial_batches_applied_total',
    'Mini-batches applied, as the shards count them',
    (s) => num(s.batches_applied),
  ],
  [
    'caviar_trial_batches_requeued_total',
    'Mini-batches handed out again after a lost lease',
    (s) => num(s.batches_requeued),
  ],
];

function perTrial(statuses: TrialStatus[], read: Read): Array<Sample<TrialLabel>> {
  return statuses.map((s) => ({ labels: { trial: s.trial ?? '' }, value: read(s) }));
}

/**
 * The coordinator's per-trial metrics, all read from `statuses()` at scrape time, so the
 * scheduler's hot paths carry no metric code. Labels: the trial id, plus a bounded enum
 * (status, phase, refusal reason) where a family needs one.
 */
export function registerTrialMetrics(registry: Registry, statuses: () => TrialStatus[]): void {
  for (const [name, help, field] of EPOCH_GAUGES) {
    new Gauge({
      name,
      help,
      labelNames: ['trial'],
      registers: [registry],
      collect() {
        const rows = statuses().map((s) => ({ s, record: last(s) }));
        fillGauge(
          this,
          rows.map(({ s, record }) => ({
            labels: { trial: s.trial ?? '' },
            value: record ? num(record[field]) : NaN,
          })),
        );
      },
    });
  }
  for (const [name, help, read] of STATUS_GAUGES) {
    new Gauge({
      name,
      help,
      labelNames: ['trial'],
      registers: [registry],
      collect() {
        fillGauge(this, perTrial(statuses(), read));
      },
    });
  }
  for (const [name, help, read] of STATUS_COUNTERS) {
    new Counter({
      name,
      help,
      labelNames: ['trial'],
      registers: [registry],
      collect() {
        fillCounter(this, perTrial(statuses(), read));
      },
    });
  }
  registerEnumeratedTrialMetrics(registry, statuses);
}

/** Families with a second, bounded label: status, time phase, refusal reason, sweep info. */
function registerEnumeratedTrialMetrics(registry: Registry, statuses: () => TrialStatus[]): void {
  new Gauge({
    name: 'caviar_trial_status',
    help: 'Trial state: 1 for the current one, 0 for the others',
    labelNames: ['trial', 'status'],
    registers: [registry],
    collect() {
      fillGauge(
        this,
        statuses().flatMap((s) =>
          TRIAL_STATES.map((state) => ({
            labels: { trial: s.trial ?? '', status: state },
            value: s.status === state ? 1 : 0,
          })),
        ),
      );
    },
  });
  new Gauge({
    name: 'caviar_trial_info',
    help: 'Constant 1; labels say which sweep the trial belongs to and how it trains',
    labelNames: ['trial', 'sweep', 'mode', 'optimizer'],
    registers: [registry],
    collect() {
      fillGauge(
        this,
        statuses().map((s) => ({
          labels: {
            trial: s.trial ?? '',
            sweep: s.sweep ?? '',
            mode: s.spec?.mode ?? '',
            optimizer: s.spec?.optimizer?.kind ?? '',
          },
          value: 1,
        })),
      );
    },
  });
  new Counter({
    name: 'caviar_trial_phase_seconds_total',
    help: "Seconds spent per phase over the trial's tasks (workers' compute/pull/push/eval, shards' apply)",
    labelNames: ['trial', 'phase'],
    registers: [registry],
    collect() {
      fillCounter(
        this,
        statuses().flatMap((s) =>
          PHASES.map((phase) => ({
            labels: { trial: s.trial ?? '', phase },
            value: num(s[`${phase}_seconds`]),
          })),
        ),
      );
    },
  });
  new Counter({
    name: 'caviar_trial_pushes_refused_total',
    help: 'Pushes the shards refused, summed over shards, by reason',
    labelNames: ['trial', 'reason'],
    registers: [registry],
    collect() {
      fillCounter(
        this,
        statuses().flatMap((s) =>
          Object.entries(s.pushes_refused ?? {}).map(([reason, n]) => ({
            labels: { trial: s.trial ?? '', reason },
            value: num(n),
          })),
        ),
      );
    },
  });
}
