import { collectDefaultMetrics, Registry } from 'prom-client';
import type { TrialStatus } from '../../proto/gen/caviar/v1/TrialStatus';
import { registerTrialMetrics } from '../../coordinator/trial-metrics';
import { registerClusterMetrics } from '../../coordinator/cluster-metrics';
import { registerShardMetrics } from '../../ps/shard-metrics';
import type { ShardSnapshot } from '../../ps/shard-observer';
import { registerWorkerMetrics } from '../../worker/worker-metrics';
import { registerSupervisorMetrics } from '../../client/supervisor-metrics';

/** A trial two epochs in, with a hyper-parameter blob that must never become a label. */
export const SAMPLE_TRIAL: TrialStatus = {
  trial: 'trial-7',
  status: 'running',
  sweep: 'mnist-coarse',
  spec: { mode: 'async', epochs: 5, optimizer: { kind: 'adam', lr: 0.001 }, model: 'mlp:64' },
  hyper_json: JSON.stringify({ lr: 0.001, hidden: [64], path: '/tmp/data.csv' }),
  epoch: 2,
  batches_done: 10,
  batches_per_epoch: 47,
  examples: 13_000,
  seconds: 4,
  history: [
    {
      epoch: 0,
      train_loss: 0.6,
      val_loss: 0.5,
      val_accuracy: 0.85,
      lr: 0.001,
      train_accuracy: 0.86,
    },
    {
      epoch: 1,
      train_loss: 0.4,
      val_loss: 0.38,
      val_accuracy: 0.9,
      lr: 0.0009,
      train_accuracy: 0.91,
    },
  ],
  batches_scheduled: 141,
  batches_applied: 104,
  batches_requeued: 2,
  params: 50_890,
  pushes_refused: { duplicate: 3 },
  compute_seconds: 1,
  pull_seconds: 0.5,
  push_seconds: 0.5,
  eval_seconds: 0.1,
  apply_seconds: 0.05,
  workers: 2,
};

export const SAMPLE_SHARD: ShardSnapshot = {
  shard: 'ps-0',
  trials: [
    {
      trial: 'trial-7',
      version: 100,
      batchesApplied: 104,
      elements: 25_000,
      applySeconds: 0.05,
      refused: { duplicate: 3, stale: 1 },
    },
  ],
  unknownTrialPushes: 0,
  checkpoint: { seq: 4, failures: 0, lastSeconds: 0.02 },
};

/**
 * Every metric family the code defines, registered into one Registry with sample state (as a
 * coordinator, a shard and a worker would each register theirs), plus the default process
 * metrics. Histograms have one observation each, so every series exists.
 */
export function catalogRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerTrialMetrics(registry, () => [SAMPLE_TRIAL]);
  registerClusterMetrics(registry, {
    members: () => [
      { role: 'coordinator', id: 'coordinator' },
      { role: 'ps', id: 'ps-0' },
      { role: 'worker', id: 'worker-0' },
    ],
    trials: () => [SAMPLE_TRIAL],
    departures: () => new Map([['worker', 1]]),
  });
  const shard = registerShardMetrics(registry, 'ps-0', () => SAMPLE_SHARD);
  shard.applied('trial-7', 0.0004);
  shard.bytesIn(4096);
  shard.bytesOut(8192);
  registerSupervisorMetrics(registry).restarted('ps', 'ps-0');
  const worker = registerWorkerMetrics(registry, 'worker-0', 'wasm');
  worker.observeCompute(0.01);
  worker.observePull(0.002);
  worker.observePush(0.003, 10, [{ accepted: true, version: 13 }]);
  return registry;
}

/**
 * The sample names a scrape of these families shows: a histogram's name expands to its
 * _bucket, _sum and _count series.
 */
export async function exportedSampleNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const metric of await catalogRegistry().getMetricsAsJSON()) {
    // prom-client's typings declare a numeric enum; at run time `type` is the string name.
    if ((metric.type as unknown as string) === 'histogram')
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    else names.add(metric.name);
  }
  return names;
}
