import { performance } from 'node:perf_hooks';
import type { Work__Output } from '../proto/gen/caviar/v1/Work';
import type { WorkResult } from '../proto/gen/caviar/v1/WorkResult';
import type { PushHeader } from '../proto/gen/caviar/v1/PushHeader';
import { CoordinatorClient } from '../core/coordinator-client';
import { ParameterServerClient } from '../core/ps-client';
import { errorMessage } from '../core/errors';
import { FencedError, isRetryable, isTransientRefusal } from '../core/call-status';
import { withRetries } from '../core/retry';
import type { Logger } from '../core/log';
import type { ComputeService } from './trial-compute';
import { createTrialContext, type TrialContext } from './trial-context';
import { LeaseTrainer, type ShardAnswer } from './lease-trainer';
import type { WorkerMetrics } from './worker-metrics';
import type { TlsIdentity } from '../core/security/tls-identity';

/** Per shard call: long enough for a 1 MB chunk stream, short enough that a lost reply is retried soon. */
const SHARD_DEADLINE_MS = 5_000;

export interface WorkerOptions {
  id: string;
  coordinator: string;
  /** The trials' models: on a compute thread, or this one. */
  compute: ComputeService;
  log: Logger;
  /** How long one AcquireWork call may wait for a task. Defaults to 1 s. */
  pollMs?: number;
  /** Trials whose model and buffers stay cached. Defaults to 4. */
  maxCachedTrials?: number;
  /**
   * The membership lease token pushes carry ("" when the lease is lost). Absent without etcd:
   * pushes then carry no token and shards do not fence.
   */
  fenceToken?: () => string;
  /** Told of each training task's timings and staleness. Defaults to none. */
  metrics?: WorkerMetrics;
  /**
   * Where the coordinator serves now (with etcd: the elected leader's registration), asked when
   * the current address stops answering, so the worker follows a standby that took over at
   * another address. Absent: the worker keeps trying its one address.
   */
  findCoordinator?: () => Promise<string | undefined>;
  /**
   * The shared-memory folder for same-host transfer with shards on this machine (see
   * core/shared-segment.ts). Defaults to none: every call streams chunks.
   */
  sharedMemoryDir?: string;
  /** Mutual TLS with the worker's certificate, to the coordinator and the shards. */
  tls?: TlsIdentity;
}

/**
 * A worker's loop: take a task, pull the trial's parameters from every shard, compute the
 * gradient (or the evaluation), push the slices back, report. Failures are reported as such so
 * the coordinator hands the task to another worker.
 */
export class Worker {
  private coordinator: CoordinatorClient;
  private coordinatorAddress: string;
  private readonly shards = new Map<string, ParameterServerClient>();
  /** Shards whose transport (segment or chunks) the log has told, after the first push. */
  private readonly transportTold = new Set<string>();
  private readonly contexts = new Map<string, TrialContext>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly pollMs: number;
  private readonly maxCachedTrials: number;
  /** The next task, asked for while the current one pushes. */
  private prefetched: Promise<Work__Output> | undefined;
  /** The last task's report, on its way while the next task runs. */
  private reporting: Promise<unknown> = Promise.resolve();
  private readonly trainer: LeaseTrainer;

  constructor(private readonly options: WorkerOptions) {
    this.coordinatorAddress = options.coordinator;
    this.coordinator = new CoordinatorClient(options.coordinator, { tls: options.tls });
    this.pollMs = options.pollMs ?? 1_000;
    this.maxCachedTrials = options.maxCachedTrials ?? 4;
    this.trainer = new LeaseTrainer({
      workerId: options.id,
      pull: (context, minVersion, budgetMs) => this.pull(context, minVersion, budgetMs),
      pushPull: (context, header, grads, budgetMs) =>
        this.pushPull(context, header, grads, budgetMs),
      fence: () => this.fence(),
      prefetch: () => this.prefetch(),
      pushed: (context) => context.shards.forEach((address) => this.tellTransport(address)),
      metrics: options.metrics,
    });
  }

  async start(): Promise<void> {
    await this.register();
    this.loop = this.run();
  }

  private register(): Promise<unknown> {
    return this.coordinator.registerWorker({
      id: this.options.id,
      backend: this.options.compute.name,
      pid: process.pid,
    });
  }

  /** Moves to the coordinator's current address if it changed (a standby took over). */
  private async followCoordinator(): Promise<void> {
    const address = await this.options.findCoordinator?.().catch(() => undefined);
    if (!address || address === this.coordinatorAddress) return;
    this.options.log.info(
      { from: this.coordinatorAddress, to: address },
      'the coordinator moved; following it',
    );
    this.coordinator.close();
    this.coordinator = new CoordinatorClient(address, { tls: this.options.tls });
    this.coordinatorAddress = address;
    this.prefetched = undefined;
    await this.register().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.reporting;
    for (const c of this.contexts.values()) c.model.dispose();
    for (const c of this.shards.values()) c.close();
    this.coordinator.close();
  }

  private async run(): Promise<void> {
    const { log, id } = this.options;
    while (!this.abort.signal.aborted) {
      // Without a live membership lease every push would be fenced: wait for the new one.
      if (this.options.fenceToken && !this.options.fenceToken()) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      let work: Work__Output;
      try {
        work = await this.nextWork();
      } catch (err) {
        if (this.abort.signal.aborted) return;
        log.warn({ err: errorMessage(err) }, 'cannot reach the coordinator; retrying');
        await this.followCoordinator();
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (work.kind === 'none') continue;
      const result = await this.execute(work).catch((err: unknown): WorkResult => {
        log.warn({ trial: work.trial, kind: work.kind, err: errorMessage(err) }, 'task failed');
        // Infrastructure trouble (a shard restarting, a lost membership lease) is not the trial's fault.
        const transient = isRetryable(err) || isTransientRefusal(err);
        return { error: errorMessage(err) || 'unknown error', transient };
      });
      const report = this.coordinator
        .completeWork({ ...result, lease: work.lease, worker: id })
        .catch((err: unknown) =>
          log.warn({ err: errorMessage(err) }, 'cannot report a finished task'),
        );
      // A task asked for while this one pushed (sync mode: of the next step) would wait for this
      // one's batch, which failed: it goes back too, so another worker (or this one) re-runs
      // the failed batch first.
      if (result.error) await this.giveBackPrefetched();
      // With the next task already asked for, the report travels while it runs.
      if (this.prefetched) this.reporting = report;
      else await report;
    }
  }

  /** Reports the task asked for ahead as failed (transient), unrun, so it is handed out again. */
  private async giveBackPrefetched(): Promise<void> {
    const next = await this.prefetched?.catch(() => undefined);
    this.prefetched = undefined;
    if (!next || next.kind === 'none') return;
    await this.coordinator
      .completeWork({
        lease: next.lease,
        worker: this.options.id,
        error: 'not run: the task before it failed',
        transient: true,
      })
      .catch(() => undefined);
  }

  /** The task asked for while the last one pushed, or else a fresh AcquireWork. */
  private nextWork(): Promise<Work__Output> {
    const work =
      this.prefetched ??
      this.coordinator.acquireWork(this.options.id, this.pollMs, this.abort.signal);
    this.prefetched = undefined;
    return work;
  }

  /**
   * Asks for the next task now, so that it is at hand once this one is pushed and AcquireWork's
   * round trip to the coordinator is off the critical path. In sync mode that task may be of the
   * next step, whose pull then waits at the shards for this step's update.
   */
  private prefetch(): void {
    if (this.prefetched || this.abort.signal.aborted) return;
    const work = this.coordinator.acquireWork(this.options.id, this.pollMs, this.abort.signal);
    work.catch(() => undefined); // a failure surfaces where nextWork's caller awaits it
    this.prefetched = work;
  }

  private shard(address: string): ParameterServerClient {
    let client = this.shards.get(address);
    if (!client) {
      client = new ParameterServerClient(address, {
        deadlineMs: SHARD_DEADLINE_MS,
        sharedMemoryDir: this.options.sharedMemoryDir,
        tls: this.options.tls,
      });
      this.shards.set(address, client);
    }
    return client;
  }

  private async context(work: Work__Output): Promise<TrialContext> {
    const cached = this.contexts.get(work.trial);
    if (cached && cached.shards.join() === work.shards.join()) return cached;
    cached?.model.dispose();
    // The shard connections (and same-host segments) are set up while the data set loads.
    const [context] = await Promise.all([
      createTrialContext(work.trial, work.spec!, work.shards, this.options.compute, (trial, into) =>
        this.coordinator.getFrozenParameters(trial, into),
      ),
      ...work.shards.map((address) => this.shard(address).prepare()),
    ]);
    this.contexts.set(work.trial, context);
    while (this.contexts.size > this.maxCachedTrials) {
      const oldest = this.contexts.keys().next().value as string;
      this.contexts.get(oldest)?.model.dispose();
      this.contexts.delete(oldest);
    }
    return context;
  }

  /**
   * Retries a shard call that failed for a reason that may pass (shard restarting, deadline),
   * saying so at warn: a worker that waits on a paused or dead shard shows it in its log.
   */
  private retrying<T>(
    what: string,
    shard: string,
    budgetMs: number,
    fn: () => Promise<T>,
  ): Promise<T> {
    return withRetries(fn, {
      budgetMs,
      signal: this.abort.signal,
      onRetry: (err, attempt) =>
        this.options.log.warn(
          { what, shard, attempt, err: errorMessage(err) },
          'shard call failed; retrying',
        ),
    });
  }

  /**
   * Pulls every shard's slices into the context's values; the lowest version among them. With
   * snapshotEpoch, the values as they were at that epoch's end, where the shards still hold them.
   */
  private async pull(
    context: TrialContext,
    minVersion: number,
    budgetMs: number,
    snapshotEpoch?: number,
  ): Promise<number> {
    const pulled = await Promise.all(
      context.shards.map((address, s) =>
        context.shardSlices[s].length === 0
          ? Promise.resolve({ version: 0, fromSnapshot: true })
          : this.retrying('pull', address, budgetMs, () =>
              this.shard(address).pull(context.trial, context.shardSlices[s], context.values, {
                minVersion,
                waitMs: budgetMs,
                snapshotEpoch,
                // Evaluation reads the values as the shards hold them.
                codec: snapshotEpoch === undefined ? context.pullCodec : '',
                signal: this.abort.signal,
              }),
            ),
      ),
    );
    if (snapshotEpoch !== undefined && pulled.some((p) => !p.fromSnapshot)) {
      // A shard restarted since the epoch ended: its slices are a little past the epoch's end.
      this.options.log.warn(
        { trial: context.trial, epoch: snapshotEpoch },
        "a shard no longer holds the epoch's snapshot; evaluating its current values",
      );
    }
    return Math.min(...pulled.map((v) => v.version));
  }

  private tellTransport(address: string): void {
    if (this.transportTold.has(address)) return;
    this.transportTold.add(address);
    const transport = this.shard(address).transport;
    this.options.log.info({ shard: address, transport }, 'shard transport');
  }

  /** The token pushes carry; refuses to push at all while the membership lease is lost. */
  private fence(): string {
    if (!this.options.fenceToken) return '';
    const token = this.options.fenceToken();
    if (!token)
      throw new FencedError(`worker ${this.options.id} lost its membership lease; not pushing`);
    return token;
  }

  /** Validation, train-dev, and a train-dev-sized training sample, with the pulled parameters. */
  private async evaluate(context: TrialContext, pullMs: number): Promise<WorkResult> {
    const { validation, trainDev, train } = context.splits;
    const started = performance.now();
    const val = await context.model.evaluate(validation, validation.count);
    const dev = await context.model.evaluate(trainDev, trainDev.count);
    // The training split is shuffled once, so its first examples are a fair sample of it.
    const sample = await context.model.evaluate(train, Math.min(train.count, trainDev.count));
    return {
      loss: val.loss,
      accuracy: val.accuracy,
      examples: val.examples,
      train_accuracy: sample.accuracy,
      train_dev_loss: dev.loss,
      train_dev_accuracy: dev.accuracy,
      predict_ms_p95: (context.predictMsP95 ??= await context.model.predictLatencyP95(validation)),
      pull_ms: pullMs,
      compute_ms: performance.now() - started,
    };
  }

  private async execute(work: Work__Output): Promise<WorkResult> {
    const context = await this.context(work);
    if (work.kind === 'eval') {
      this.trainer.forgetValues();
      const t = performance.now();
      // The values at the epoch's end, kept by the shards while the next epoch trains.
      await this.pull(context, Number(work.min_version), work.lease_ms, work.epoch);
      const pullMs = performance.now() - t;
      this.options.metrics?.observePull(pullMs / 1000);
      await context.model.setParameters(context.values);
      return await this.evaluate(context, pullMs);
    }
    return await this.trainer.train(context, work);
  }

  /** Pushes a batch's gradient to every shard holding slices; their answers' values land in context.values. */
  private pushPull(
    context: TrialContext,
    header: PushHeader,
    grads: ReadonlyMap<string, Float32Array>,
    budgetMs: number,
  ): Promise<ShardAnswer[]> {
    return Promise.all(
      context.shards.map((address, s) => {
        const slices = context.shardSlices[s];
        if (slices.length === 0)
          return Promise.resolve({ accepted: false, duplicate: false, version: Infinity });
        const options = { signal: this.abort.signal };
        return this.retrying('push', address, budgetMs, () =>
          this.shard(address).pushPull(header, slices, grads, context.values, options),
        );
      }),
    );
  }
}
