/**
 * The cluster section of `npm run bench`: the trial on `caviar train --local` for workers {1,2}
 * × shards {1,2} × mode {sync,async} (with --quick, 2 workers, 2 shards, async only), each
 * against the single-process compute limit of its backend: the scaling efficiency.
 */
import type { BenchReport, SectionOptions } from './report';
import { round } from './stats';
import { aggregate, clusterLabel, trainRuns, type ClusterConfig } from './train-runs';

function configs(quick: boolean): ClusterConfig[] {
  if (quick) return [{ workers: 2, shards: 2, mode: 'async', backend: 'auto' }];
  return [1, 2].flatMap((workers) =>
    [1, 2].flatMap((shards) =>
      (['sync', 'async'] as const).map((mode) => ({ workers, shards, mode, backend: 'auto' })),
    ),
  );
}

async function clusterConfig(
  cfg: ClusterConfig,
  o: SectionOptions,
  report: BenchReport,
  single: ReadonlyMap<string, number>,
): Promise<void> {
  const runs = await trainRuns(cfg, o, report);
  const { fields } = aggregate(cfg, runs);
  if (fields.error !== undefined) {
    report.fail(`cluster ${clusterLabel(cfg)}: ${String(fields.error)}`);
    report.emit({ bench: 'cluster', ...fields });
    return;
  }
  const rate = fields.examples_per_s as number;
  // The cluster names its workers' backend(s); a mixed cluster has no single compute limit.
  const limit = single.get(fields.backend as string) ?? null;
  report.emit({
    bench: 'cluster',
    ...fields,
    single_process_examples_per_s: limit,
    scaling_efficiency: limit ? round(rate / (cfg.workers * limit), 3) : null,
  });
}

/** `single`: examples/s of one process per backend (compute-limit.ts), the efficiency's divisor. */
export async function benchCluster(
  o: SectionOptions & { quick: boolean },
  report: BenchReport,
  single: ReadonlyMap<string, number>,
): Promise<void> {
  for (const cfg of configs(o.quick)) await clusterConfig(cfg, o, report, single);
}
