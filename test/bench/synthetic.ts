/**
 * The synthetic section of `npm run bench`: the cluster with `--backend synthetic` (workers
 * compute nothing), so its rates are the system path's alone: pulls, pushes and applies per
 * second, and the mean time of each.
 */
import type { BenchReport, SectionOptions } from './report';
import { round } from './stats';
import { aggregate, clusterLabel, trainRuns, type ClusterConfig, type Mode } from './train-runs';

async function systemPath(mode: Mode, o: SectionOptions, report: BenchReport): Promise<void> {
  const cfg: ClusterConfig = { workers: 2, shards: 2, mode, backend: 'synthetic' };
  const runs = await trainRuns(cfg, o, report);
  const { fields, median: s } = aggregate(cfg, runs);
  if (!s) {
    report.fail(`system_path ${clusterLabel(cfg)}: ${String(fields.error)}`);
    report.emit({ bench: 'system_path', ...fields });
    return;
  }
  // One pull and one push (to every shard, in parallel) per train task; one pull per evaluation.
  const trainTasks = s.batches_scheduled + s.batches_requeued;
  const pulls = trainTasks + s.epochs;
  const per = (n: number): number => (s.seconds > 0 ? round(n / s.seconds, 1) : 0);
  report.emit({
    bench: 'system_path',
    ...fields,
    pushes_per_s: per(trainTasks),
    pulls_per_s: per(pulls),
    applies_per_s: per(s.batches_applied),
    mean_pull_ms: round((1000 * s.time.pull) / pulls, 2),
    mean_push_ms: round((1000 * s.time.push) / trainTasks, 2),
    mean_apply_ms: round((1000 * s.time.apply) / Math.max(1, s.batches_applied), 2),
  });
}

export async function benchSynthetic(o: SectionOptions, report: BenchReport): Promise<void> {
  for (const mode of ['async', 'sync'] as const) await systemPath(mode, o, report);
}
