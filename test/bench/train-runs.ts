/**
 * The bench's trial (issue 3's configuration: MNIST, mlp:256, batch 128, Adam 1e-3) as
 * `caviar train --json` runs, repeated --runs times and summed up as the fields every
 * cluster-like line (cluster, system_path, peer, warm_cluster) shares.
 */
import type { TrainSummary } from '../../client/summary';
import { CAVIAR_BIN } from '../helpers/repo';
import { failure, lastJsonLine, runChild } from './children';
import type { BenchReport, SectionOptions } from './report';
import { medianIndex, round, spreadOf } from './stats';

export const MODEL = 'mlp:256';
export const BATCH = 128;
export const EPOCHS = 2;
/** `caviar train` flags shared by every cluster run. */
const TRAIN_ARGS = [
  '--dataset',
  'mnist',
  '--model',
  MODEL,
  '--batch',
  String(BATCH),
  '--optimizer',
  'adam',
  '--lr',
  '1e-3',
];

export type Mode = 'sync' | 'async';

export interface ClusterConfig {
  workers: number;
  shards: number;
  mode: Mode;
  backend: string;
  /** Defaults to EPOCHS. */
  epochs?: number;
}

export interface TrainRun {
  summary?: TrainSummary;
  wallS: number;
  error?: string;
}

/** One run of the trial on a fresh `caviar train --local` cluster of `cfg`'s shape. */
export async function trainOnce(cfg: ClusterConfig, timeoutS: number): Promise<TrainRun> {
  return runTrain(
    [
      '--local',
      '--workers',
      String(cfg.workers),
      '--shards',
      String(cfg.shards),
      '--backend',
      cfg.backend,
    ],
    cfg.mode,
    cfg.epochs ?? EPOCHS,
    timeoutS,
  );
}

/** One `caviar train --json` of the bench's trial on the cluster `where` names, and its summary. */
export async function runTrain(
  where: string[],
  mode: Mode,
  epochs: number,
  timeoutS: number,
): Promise<TrainRun> {
  const args = [CAVIAR_BIN, 'train', ...where, ...TRAIN_ARGS];
  args.push('--epochs', String(epochs), '--mode', mode, '--json');
  const r = await runChild(process.execPath, args, timeoutS);
  try {
    const summary = lastJsonLine<TrainSummary>(r.stdout, (v) => 'trial' in v);
    if (r.code !== 0 || summary.status !== 'completed') {
      return {
        summary,
        wallS: r.wallS,
        error: `trial ${summary.status}${summary.error ? `: ${summary.error}` : ''}`,
      };
    }
    return { summary, wallS: r.wallS };
  } catch {
    return { wallS: r.wallS, error: failure(r, 'caviar train') };
  }
}

export const clusterLabel = (c: ClusterConfig): string =>
  `workers ${c.workers}, shards ${c.shards}, ${c.mode}, backend ${c.backend}, ${c.epochs ?? EPOCHS} epochs`;

/** The line one finished run logs: its rate and time, or why it failed. */
export function logRun(report: BenchReport, run: TrainRun, seconds: boolean): void {
  if (run.error) return report.log(`  failed: ${run.error}`);
  const time = seconds ? ` in ${run.summary!.seconds} s` : '';
  report.log(`  ${run.summary!.examples_per_s} examples/s${time}`);
}

/** `cfg`'s trial --runs times, one fresh local cluster each. */
export async function trainRuns(
  cfg: ClusterConfig,
  o: SectionOptions,
  report: BenchReport,
): Promise<TrainRun[]> {
  const runs: TrainRun[] = [];
  for (let i = 0; i < o.runs; i++) {
    report.log(`cluster: ${clusterLabel(cfg)} (run ${i + 1}/${o.runs})`);
    const run = await trainOnce(cfg, o.timeoutS);
    logRun(report, run, true);
    runs.push(run);
  }
  return runs;
}

/**
 * Where the workers' wall time went: each phase's seconds (summed over workers) over
 * workers × trial seconds; `waiting` is the rest (asking for work, the sync barrier handed out
 * by the coordinator, idling while another worker evaluates). In sync mode a pull waits for the
 * step's parameters, so part of the barrier shows up under `pull`. Shards: optimizer seconds.
 */
function breakdown(s: TrainSummary, workers: number, shards: number): Record<string, number> {
  const wall = workers * s.seconds;
  const frac = (x: number): number => (wall > 0 ? round(x / wall, 3) : 0);
  const compute = frac(s.time.compute);
  const pull = frac(s.time.pull);
  const push = frac(s.time.push);
  const evalFrac = frac(s.time.eval);
  return {
    compute,
    pull,
    push,
    eval: evalFrac,
    waiting: round(Math.max(0, 1 - compute - pull - push - evalFrac), 3),
    apply_s: s.time.apply,
    apply_fraction_of_shards: s.seconds > 0 ? round(s.time.apply / (shards * s.seconds), 3) : 0,
  };
}

/** The fields every cluster-like line shares: the median run's numbers and the spread. */
export function aggregate(
  cfg: ClusterConfig,
  runs: TrainRun[],
): { ok: TrainRun[]; fields: Record<string, unknown>; median?: TrainSummary } {
  const ok = runs.filter((r) => r.summary && !r.error);
  const base = {
    workers: cfg.workers,
    shards: cfg.shards,
    mode: cfg.mode,
    epochs: cfg.epochs ?? EPOCHS,
    runs: runs.length,
    failed_runs: runs.length - ok.length,
  };
  if (ok.length === 0) {
    return { ok, fields: { ...base, error: runs[0]?.error ?? 'no runs' } };
  }
  const rates = ok.map((r) => r.summary!.examples_per_s);
  const s = ok[medianIndex(rates)].summary!;
  const spread = spreadOf(rates);
  const wall = ok[medianIndex(rates)].wallS;
  return {
    ok,
    median: s,
    fields: {
      ...base,
      backend: s.backend,
      examples_per_s: spread.median,
      examples_per_s_min: spread.min,
      examples_per_s_max: spread.max,
      spread: spread.spread,
      examples_per_s_runs: spread.runs,
      seconds: s.seconds,
      process_wall_s: round(wall, 2),
      examples: s.examples,
      val_accuracy: s.val_accuracy,
      val_loss: s.val_loss,
      batches_scheduled: s.batches_scheduled,
      batches_applied: s.batches_applied,
      batches_requeued: s.batches_requeued,
      time: s.time,
      breakdown: breakdown(s, cfg.workers, cfg.shards),
      ...(runs.some((r) => r.error) ? { run_errors: runs.flatMap((r) => r.error ?? []) } : {}),
    },
  };
}
