import { Gauge, Histogram, type Registry } from 'prom-client';

/** What the worker loop reports per training task; every method is cheap and never throws. */
export interface WorkerMetrics {
  /** Seconds the gradient of one mini-batch took to compute (clipping included). */
  observeCompute(seconds: number): void;
  /** Seconds pulling the parameters from every shard, for one task. */
  observePull(seconds: number): void;
  /**
   * Seconds pushing the gradient to every shard, and the shards' replies, from which the
   * gradient's staleness follows (see `staleness`).
   */
  observePush(seconds: number, pulledVersion: number, replies: readonly PushAnswer[]): void;
}

/** The fields of a shard's PushReply that staleness reads. */
export interface PushAnswer {
  accepted?: boolean;
  duplicate?: boolean;
  version?: number | string | { toString(): string };
}

/**
 * How many optimizer updates other workers' gradients made between this worker's pull and its
 * push: a shard's version after an accepted push, less the update this push made, less the
 * version pulled. The worst shard counts. Sync mode gives 0 (a step waits for all its batches);
 * async mode grows with the number of workers.
 */
export function staleness(pulledVersion: number, replies: readonly PushAnswer[]): number {
  let worst = 0;
  for (const r of replies) {
    if (!r.accepted || r.version === undefined) continue;
    worst = Math.max(worst, Number(r.version) - 1 - pulledVersion);
  }
  return worst;
}

/** Gradient compute: a synthetic batch takes microseconds, a LeNet batch on the cpu backend seconds. */
const COMPUTE_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
/** One pull or push over every shard: loopback for a small MLP is a millisecond or two. */
const RPC_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];
/** Staleness in optimizer updates; whole numbers, so the buckets are too. */
const STALENESS_BUCKETS = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128];

/**
 * A worker's metrics, labelled with its id (bounded: one per process) and, for the info gauge,
 * the compute backend it chose.
 */
export function registerWorkerMetrics(
  registry: Registry,
  worker: string,
  backend: string,
): WorkerMetrics {
  new Gauge({
    name: 'caviar_worker_info',
    help: 'Constant 1; the labels name the worker and its compute backend',
    labelNames: ['worker', 'backend'],
    registers: [registry],
  }).set({ worker, backend }, 1);
  const histogram = (name: string, help: string, buckets: number[]) =>
    new Histogram({ name, help, buckets, labelNames: ['worker'], registers: [registry] }).labels({
      worker,
    });
  const compute = histogram(
    'caviar_worker_gradient_seconds',
    'Seconds to compute one mini-batch gradient',
    COMPUTE_BUCKETS,
  );
  const pull = histogram(
    'caviar_worker_pull_seconds',
    'Seconds to pull a trial parameters from every shard',
    RPC_BUCKETS,
  );
  const push = histogram(
    'caviar_worker_push_seconds',
    'Seconds to push one gradient to every shard',
    RPC_BUCKETS,
  );
  const stale = histogram(
    'caviar_worker_gradient_staleness_updates',
    'Optimizer updates applied between pulling the parameters and pushing their gradient',
    STALENESS_BUCKETS,
  );
  return {
    observeCompute: (seconds) => compute.observe(seconds),
    observePull: (seconds) => pull.observe(seconds),
    observePush: (seconds, pulledVersion, replies) => {
      push.observe(seconds);
      stale.observe(staleness(pulledVersion, replies));
    },
  };
}
