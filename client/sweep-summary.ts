import Table from 'cli-table3';
import type { SweepStatus__Output } from '../proto/gen/caviar/v1/SweepStatus';
import type { TrialStatus__Output } from '../proto/gen/caviar/v1/TrialStatus';
import { trialHyper } from '../core/trial-hyper';

/** One trial of a sweep, as `caviar sweep --json` reports it (DESIGN.md's contract). */
export interface SweepTrialSummary {
  trial: string;
  status: string;
  hyper: Record<string, unknown>;
  epochs: number;
  best_epoch: number | null;
  val_accuracy: number | null;
  val_loss: number | null;
  params: number;
  verdict: string;
  round: number;
  /** 95th-percentile latency of predicting one validation example, ms. */
  predict_ms_p95: number;
  stop_reason?: string;
}

export interface SweepSummary {
  sweep: string;
  status: string;
  seconds: number;
  objective: string;
  trials: SweepTrialSummary[];
  best: SweepTrialSummary | null;
  error?: string;
}

const finite = (x: number | undefined): number | null =>
  x !== undefined && Number.isFinite(x) ? x : null;

export function sweepTrialSummary(t: TrialStatus__Output): SweepTrialSummary {
  const best =
    t.history.length > 0 ? t.history[Math.min(t.best_epoch, t.history.length - 1)] : undefined;
  return {
    trial: t.trial,
    status: t.status,
    hyper: t.hyper_json ? trialHyper(t) : {},
    epochs: t.history.length,
    best_epoch: best ? best.epoch : null,
    val_accuracy: finite(best?.val_accuracy),
    val_loss: finite(best?.val_loss),
    params: Number(t.params),
    verdict: t.verdict,
    round: t.round,
    predict_ms_p95: Number(Number(t.predict_ms_p95).toFixed(3)),
    ...(t.stop_reason ? { stop_reason: t.stop_reason } : {}),
  };
}

export function sweepSummary(s: SweepStatus__Output): SweepSummary {
  const trials = s.trials.map(sweepTrialSummary);
  return {
    sweep: s.sweep,
    status: s.status,
    seconds: Number(Number(s.seconds).toFixed(3)),
    objective: s.objective,
    trials,
    best: trials.find((t) => t.trial === s.best) ?? null,
    ...(s.error ? { error: s.error } : {}),
  };
}

const fmt = (x: number | null, digits = 4): string => (x === null ? '-' : x.toFixed(digits));

function hyperText(hyper: Record<string, unknown>): string {
  return Object.entries(hyper)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(3)) : JSON.stringify(v)}`)
    .join(' ');
}

/** The leaderboard: feasible trials first, by the objective; the winner marked. */
export function leaderboardTable(s: SweepStatus__Output): string {
  const byId = new Map(s.trials.map((t) => [t.trial, sweepTrialSummary(t)]));
  const table = new Table({
    head: [
      '#',
      'trial',
      'status',
      'hyper-parameters',
      'best epoch',
      'val acc',
      'val loss',
      'params',
      'breaks',
    ],
  });
  s.leaderboard.forEach((id, i) => {
    const t = byId.get(id);
    if (!t) return;
    table.push([
      id === s.best ? `${i + 1} *` : String(i + 1),
      t.trial,
      t.stop_reason ? `${t.status} (${t.stop_reason})` : t.status,
      hyperText(t.hyper),
      t.best_epoch === null ? '-' : String(t.best_epoch + 1),
      fmt(t.val_accuracy),
      fmt(t.val_loss),
      String(t.params),
      s.violations[i] || '',
    ]);
  });
  return table.toString();
}

/** Each ranked trial's bias/variance verdict, one line each. */
export function verdictLines(s: SweepStatus__Output): string {
  const byId = new Map(s.trials.map((t) => [t.trial, t]));
  return s.leaderboard
    .map((id) => byId.get(id))
    .filter((t): t is TrialStatus__Output => t !== undefined && t.verdict !== '')
    .map((t) => `${t.trial}: ${t.verdict}`)
    .join('\n');
}

export function sweepReport(s: SweepStatus__Output): string {
  const head = `sweep ${s.sweep}: ${s.status}, ${s.trials.length}/${s.trials_planned} trials, round ${s.round + 1}/${s.rounds}, ${Number(s.seconds).toFixed(1)} s; ${s.objective}`;
  const best = s.best ? `best: ${s.best}` : 'best: none meets every constraint yet';
  return [
    head,
    leaderboardTable(s),
    best,
    'verdicts (best epoch of each trial):',
    verdictLines(s),
  ].join('\n');
}
