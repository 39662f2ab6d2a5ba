/**
 * The warm section of `npm run bench`: the cluster figure once the cluster runs. `caviar up`
 * with 2 workers and 1 shard (the peer's shape), one untimed trial, then the 2-epoch trial of
 * the cluster section --runs times per mode. A fresh cluster spends its first thousand batches
 * or so with V8 still compiling the hot paths (grpc-js, protobufjs, tfjs); a sweep's trials
 * after the first run warm.
 */
import { upCluster } from './children';
import { PEER_SHARDS } from './peer';
import type { BenchReport, SectionOptions } from './report';
import { aggregate, EPOCHS, runTrain, type Mode, type TrainRun } from './train-runs';

export async function benchWarmCluster(o: SectionOptions, report: BenchReport): Promise<void> {
  const up = await upCluster(2, PEER_SHARDS);
  try {
    const train = (mode: Mode): Promise<TrainRun> =>
      runTrain(['--coordinator', up.coordinator], mode, EPOCHS, o.timeoutS);
    report.log('warm cluster: 2 workers, 1 shard; one untimed trial');
    await train('async');
    for (const mode of ['sync', 'async'] as const) {
      const runs: TrainRun[] = [];
      for (let i = 0; i < o.runs; i++) {
        report.log(`warm cluster: ${mode} (run ${i + 1}/${o.runs})`);
        runs.push(await train(mode));
      }
      const { fields } = aggregate(
        { workers: 2, shards: PEER_SHARDS, mode, backend: 'auto' },
        runs,
      );
      if (fields.error !== undefined) report.fail(`warm cluster ${mode}: ${String(fields.error)}`);
      report.emit({ bench: 'warm_cluster', ...fields });
    }
  } finally {
    up.stop();
  }
}
