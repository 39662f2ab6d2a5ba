import { status as grpcStatus } from '@grpc/grpc-js';
import type { CoordinatorClient } from '../../core/coordinator-client';
import type { SweepStatus__Output } from '../../proto/gen/caviar/v1/SweepStatus';
import type { TrialStatus__Output } from '../../proto/gen/caviar/v1/TrialStatus';
import { trialHyper } from '../../core/trial-hyper';
import { epochMeasures, type EpochMeasures } from '../../core/epoch-measures';

/** One epoch of a trial's learning curve (epoch counted from 1, as people read it). */
export interface CurvePoint extends EpochMeasures {
  epoch: number;
}

/** A trial as the report shows it: its leaderboard row and its curve. */
export interface ReportTrial {
  trial: string;
  /** 1-based place on the leaderboard, or null when the sweep has not ranked it. */
  rank: number | null;
  status: string;
  stopReason: string;
  round: number;
  hyper: Record<string, unknown>;
  model: string;
  /** The best epoch's metrics (1-based epoch), null before any epoch ends. */
  best: CurvePoint | null;
  params: number;
  seconds: number;
  /** 95th-percentile latency of predicting one validation example (ms), NaN when unmeasured. */
  predictMsP95: number;
  verdict: string;
  /** The constraints it breaks, "" when none. */
  violations: string;
  history: CurvePoint[];
  error: string;
}

export interface ReportData {
  /** The sweep's or the lone trial's name. */
  name: string;
  kind: 'sweep' | 'trial';
  status: string;
  objective: string;
  seconds: number;
  /** Leaderboard order: ranked trials first, then any the sweep has not ranked. */
  trials: ReportTrial[];
  /** The winner's id, "" when none meets every constraint. */
  winner: string;
  /** The winner's full status: what rebuilding its model needs. */
  winnerStatus: TrialStatus__Output | undefined;
}

const num = (v: unknown): number => (v === undefined || v === null ? NaN : Number(v));

function curve(t: TrialStatus__Output): CurvePoint[] {
  return t.history.map((h) => ({
    epoch: num(h.epoch) + 1,
    ...epochMeasures(h, NaN),
  }));
}

export function reportTrial(
  t: TrialStatus__Output,
  rank: number | null,
  violations: string,
): ReportTrial {
  const history = curve(t);
  return {
    trial: t.trial,
    rank,
    status: t.status,
    stopReason: t.stop_reason,
    round: t.round,
    hyper: trialHyper(t),
    model: t.spec?.model ?? '',
    best: history.length > 0 ? history[Math.min(t.best_epoch, history.length - 1)] : null,
    params: num(t.params),
    seconds: num(t.seconds),
    predictMsP95: t.predict_ms_p95 > 0 ? num(t.predict_ms_p95) : NaN,
    verdict: t.verdict,
    violations,
    history,
    error: t.error,
  };
}

export function reportDataFromSweep(s: SweepStatus__Output): ReportData {
  const byId = new Map(s.trials.map((t) => [t.trial, t]));
  const ranked = s.leaderboard
    .map((id, i) => ({ status: byId.get(id), i }))
    .filter((r): r is { status: TrialStatus__Output; i: number } => r.status !== undefined)
    .map((r) => reportTrial(r.status, r.i + 1, s.violations[r.i] ?? ''));
  const seen = new Set(ranked.map((t) => t.trial));
  const unranked = s.trials.filter((t) => !seen.has(t.trial)).map((t) => reportTrial(t, null, ''));
  return {
    name: s.sweep,
    kind: 'sweep',
    status: s.status,
    objective: s.objective,
    seconds: num(s.seconds),
    trials: [...ranked, ...unranked],
    winner: s.best,
    winnerStatus: s.best ? byId.get(s.best) : undefined,
  };
}

/** A lone trial is a sweep of one: its own winner once it completed. */
export function reportDataFromTrial(t: TrialStatus__Output): ReportData {
  const winner = t.status === 'completed' ? t.trial : '';
  return {
    name: t.trial,
    kind: 'trial',
    status: t.status,
    objective: 'maximize val_accuracy',
    seconds: num(t.seconds),
    trials: [reportTrial(t, 1, '')],
    winner,
    winnerStatus: winner ? t : undefined,
  };
}

/** What the report needs from the coordinator: the sweep named `name`, or else that trial. */
export async function fetchReportData(
  client: CoordinatorClient,
  name: string,
): Promise<ReportData> {
  const sweep = await client.getSweep(name).catch((err: { code?: number }) => {
    if (err.code === grpcStatus.NOT_FOUND) return undefined;
    throw err;
  });
  return sweep ? reportDataFromSweep(sweep) : reportDataFromTrial(await client.getTrial(name));
}

/** The metric the objective optimizes ("maximize val_accuracy subject to ..." → val_accuracy). */
export function objectiveMetric(objective: string): string {
  return /^\s*(?:maximize|minimize)\s+([a-z_0-9]+)/.exec(objective)?.[1] ?? 'val_accuracy';
}
