import Table from 'cli-table3';
import type { TrialStatus__Output } from '../proto/gen/caviar/v1/TrialStatus';

/** The `caviar train --json` summary (DESIGN.md's contract). */
export interface TrainSummary {
  trial: string;
  status: string;
  epochs: number;
  examples: number;
  seconds: number;
  examples_per_s: number;
  train_loss: number | null;
  val_loss: number | null;
  val_accuracy: number | null;
  backend: string;
  batches_scheduled: number;
  batches_applied: number;
  batches_requeued: number;
  /** Pushes the shards refused, by reason: duplicates of retried or re-run batches, fenced zombies... */
  pushes_refused: Record<string, number>;
  mode: string;
  workers: number;
  /** Seconds summed over the workers' tasks per phase (apply: the shards' optimizer time). */
  time: { compute: number; pull: number; push: number; apply: number; eval: number };
  error?: string;
}

const finite = (x: number | undefined): number | null =>
  x !== undefined && Number.isFinite(x) ? x : null;
const round = (x: number, digits: number): number => Number(x.toFixed(digits));

export function trainSummary(status: TrialStatus__Output): TrainSummary {
  const last = status.history[status.history.length - 1];
  const seconds = Number(status.seconds);
  const examples = Number(status.examples);
  return {
    trial: status.trial,
    status: status.status,
    epochs: status.history.length,
    examples,
    seconds: round(seconds, 3),
    examples_per_s: seconds > 0 ? round(examples / seconds, 1) : 0,
    train_loss: finite(last?.train_loss),
    val_loss: finite(last?.val_loss),
    val_accuracy: finite(last?.val_accuracy),
    backend: status.backends.join(',') || 'none',
    batches_scheduled: Number(status.batches_scheduled),
    batches_applied: Number(status.batches_applied),
    batches_requeued: status.batches_requeued,
    pushes_refused: status.pushes_refused,
    mode: status.spec?.mode ?? '',
    workers: status.workers,
    time: {
      compute: round(status.compute_seconds, 3),
      pull: round(status.pull_seconds, 3),
      push: round(status.push_seconds, 3),
      apply: round(status.apply_seconds, 3),
      eval: round(status.eval_seconds, 3),
    },
    ...(status.error ? { error: status.error } : {}),
  };
}

const fmt = (x: number | null | undefined, digits = 4): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);

/** The per-epoch learning curve as a table, for people. */
export function historyTable(status: TrialStatus__Output): string {
  const table = new Table({
    head: ['epoch', 'train loss', 'val loss', 'val accuracy', 'lr', 'seconds'],
  });
  for (const e of status.history) {
    table.push([
      e.epoch + 1,
      fmt(e.train_loss),
      fmt(e.val_loss),
      fmt(e.val_accuracy),
      e.lr.toPrecision(3),
      fmt(e.seconds, 1),
    ]);
  }
  return table.toString();
}

export function summaryText(summary: TrainSummary): string {
  const lines = [
    `trial ${summary.trial}: ${summary.status} after ${summary.epochs} epoch(s), ${summary.examples} examples in ${summary.seconds.toFixed(1)} s ` +
      `(${summary.examples_per_s.toFixed(0)} examples/s, backend ${summary.backend}, ${summary.mode})`,
    `validation accuracy ${fmt(summary.val_accuracy)}, validation loss ${fmt(summary.val_loss)}; ` +
      `batches scheduled ${summary.batches_scheduled}, applied ${summary.batches_applied}`,
  ];
  if (summary.error) lines.push(`error: ${summary.error}`);
  return lines.join('\n');
}

/** All trials, one row each. */
export function trialsTable(trials: readonly TrialStatus__Output[]): string {
  const table = new Table({
    head: ['trial', 'status', 'model', 'epoch', 'val accuracy', 'val loss', 'seconds'],
  });
  for (const t of trials) {
    const last = t.history[t.history.length - 1];
    table.push([
      t.trial,
      t.status,
      t.spec?.model ?? '',
      `${t.history.length}/${t.spec?.epochs ?? 0}`,
      fmt(last?.val_accuracy),
      fmt(last?.val_loss),
      fmt(Number(t.seconds), 1),
    ]);
  }
  return table.toString();
}
