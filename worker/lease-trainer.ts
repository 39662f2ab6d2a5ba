import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { stepWaitMs, syncPullBudgetMs } from '../core/sync-barrier';
import { pushCodecOf } from '../core/compression';
import { hit } from '../core/fault-points';
import type { Work__Output } from '../proto/gen/caviar/v1/Work';
import type { WorkResult } from '../proto/gen/caviar/v1/WorkResult';
import type { TrainBatch__Output } from '../proto/gen/caviar/v1/TrainBatch';
import type { PushHeader } from '../proto/gen/caviar/v1/PushHeader';
import type { PushReply__Output } from '../proto/gen/caviar/v1/PushReply';
import { finishGradient, trainingBatch, type TrialContext } from './trial-context';
import type { WorkerMetrics } from './worker-metrics';

/** What a push-pull's answer tells the trainer, per shard. */
export type ShardAnswer = Pick<PushReply__Output, 'accepted' | 'duplicate' | 'version'>;

/** What the lease trainer needs of its worker: the shard calls, with their retries. */
export interface BatchIo {
  workerId: string;
  /** Pulls every shard's slices into the context's values; the lowest version among them. */
  pull(context: TrialContext, minVersion: number, budgetMs: number): Promise<number>;
  /** Pushes a gradient to every shard; the values they answer with land in context.values. */
  pushPull(
    context: TrialContext,
    header: PushHeader,
    grads: ReadonlyMap<string, Float32Array>,
    budgetMs: number,
  ): Promise<ShardAnswer[]>;
  /** The membership lease token pushes carry; throws while the lease is lost. */
  fence(): string;
  /** Asks the coordinator for the next task while this one's last push travels. */
  prefetch(): void;
  /** Logs which transport each shard's pushes took, once per shard. */
  pushed(context: TrialContext): void;
  metrics?: WorkerMetrics;
}

/** What one mini-batch of a batch lease came to: its loss, where its time went, whether a repeat. */
interface BatchOutcome {
  loss: number;
  computeMs: number;
  pullMs: number;
  pushMs: number;
  duplicate: boolean;
}

/** A batch's gradient, ready to push, and the version of the values it was computed from. */
interface Computed {
  batch: TrainBatch__Output;
  loss: number;
  grads: ReadonlyMap<string, Float32Array>;
  version: number;
  computeMs: number;
  pullMs: number;
}

/**
 * What a batch computes from: the version of the values, and the values themselves where the
 * model's parameters are yet to be set from them (absent: the model holds them already).
 */
interface ComputeFrom {
  version: number;
  pullMs: number;
  values?: ReadonlyMap<string, Float32Array>;
}

/**
 * Runs a batch lease's training batches: pull (unless the last push brought the values back),
 * compute, push-pull, in turn. A trial with `overlap` (async or ssp) computes each batch while
 * the one before it is on its way to the shards, from the values the push before that brought
 * back: one more version of staleness, in exchange for the push's round trip off the
 * compute's path.
 */
export class LeaseTrainer {
  /**
   * The trial whose values came back with the last task's push (PushPull), at this version, and
   * no task has run since: the next task of that trial needs no pull if the version is enough.
   */
  private fresh: { context: TrialContext; version: number } | undefined;
  /** The last training batch's compute time, which bounds a sync pull's wait. */
  private lastComputeMs = 0;

  constructor(private readonly io: BatchIo) {}

  /** The context's values are no longer what the last push brought back (an evaluation pulled). */
  forgetValues(): void {
    this.fresh = undefined;
  }

  async train(context: TrialContext, work: Work__Output): Promise<WorkResult> {
    const batches: TrainBatch__Output[] = [work, ...work.more];
    const overlap = work.spec?.overlap === true && work.spec.mode !== 'sync';
    const results = overlap
      ? await this.overlapped(context, work, batches)
      : await this.inTurn(context, work, batches);
    const sum = (f: (r: BatchOutcome) => number): number => results.reduce((n, r) => n + f(r), 0);
    return {
      loss: results[0].loss,
      more_losses: results.slice(1).map((r) => r.loss),
      examples: batches.reduce((n, b) => n + b.indices.length, 0),
      compute_ms: sum((r) => r.computeMs),
      pull_ms: sum((r) => r.pullMs),
      push_ms: sum((r) => r.pushMs),
      duplicate: results.some((r) => r.duplicate),
    };
  }

  private async inTurn(
    context: TrialContext,
    work: Work__Output,
    batches: TrainBatch__Output[],
  ): Promise<BatchOutcome[]> {
    const results: BatchOutcome[] = [];
    for (const [i, batch] of batches.entries()) {
      const pulled = await this.valuesFor(context, work, batch);
      const computed = await this.compute(context, work, batch, pulled);
      const pushedAt = performance.now();
      const pushing = this.push(context, work, computed, i === batches.length - 1);
      results.push(await this.landed(computed, pushing, 0, pushedAt));
    }
    return results;
  }

  /**
   * Batch i + 1 computes while batch i's push-pull travels. The model's parameters are set from
   * context.values only once no answer is being written into them, so no batch computes from
   * a half-written slice.
   */
  private async overlapped(
    context: TrialContext,
    work: Work__Output,
    batches: TrainBatch__Output[],
  ): Promise<BatchOutcome[]> {
    const results: BatchOutcome[] = [];
    const first = await this.valuesFor(context, work, batches[0]);
    // The version of the values the model's parameters hold.
    let modelVersion = first.version;
    let computed = await this.compute(context, work, batches[0], first);
    for (let i = 0; i < batches.length; i++) {
      const pushedAt = performance.now();
      const pushing = this.push(context, work, computed, i === batches.length - 1);
      // What the push held the thread for before its first wait (copying into a segment, say).
      const issueMs = performance.now() - pushedAt;
      const next = batches[i + 1] as TrainBatch__Output | undefined;
      let ahead: Computed | undefined;
      if (next && modelVersion >= Number(next.min_version)) {
        // A failure while computing ahead must not leave the push's rejection unheard.
        pushing.catch(() => undefined);
        // One turn of the event loop, so the push's request is on its way before a compute on
        // this thread holds it.
        await nextTurn();
        ahead = await this.compute(context, work, next, { version: modelVersion, pullMs: 0 });
      }
      results.push(await this.landed(computed, pushing, issueMs, performance.now()));
      if (!next) break;
      if (ahead && this.fresh) {
        // Batch i + 2 computes from the values batch i's push brought back.
        // Set now, not with the next compute: by then its push is in flight, and its answer
        // would be written into the values while the model copies them.
        await context.model.setParameters(context.values);
        modelVersion = this.fresh.version;
        this.fresh = undefined;
        computed = ahead;
      } else {
        const pulled = await this.valuesFor(context, work, next);
        modelVersion = pulled.version;
        computed = await this.compute(context, work, next, pulled);
      }
    }
    return results;
  }

  /**
   * Pulls unless the last push brought back recent enough values: the values the batch is to
   * compute from, which the compute sets the model's parameters from.
   */
  private async valuesFor(
    context: TrialContext,
    work: Work__Output,
    batch: TrainBatch__Output,
  ): Promise<ComputeFrom> {
    const fresh = this.fresh;
    this.fresh = undefined;
    const t = performance.now();
    const reuse =
      fresh !== undefined &&
      fresh.context === context &&
      fresh.version >= Number(batch.min_version);
    const budgetMs =
      work.spec?.mode === 'sync'
        ? syncPullBudgetMs(work.lease_ms, this.lastComputeMs)
        : work.lease_ms;
    const version = reuse
      ? fresh.version
      : await this.io.pull(context, Number(batch.min_version), budgetMs);
    const pullMs = performance.now() - t;
    this.io.metrics?.observePull(pullMs / 1000);
    return { version, pullMs, values: context.values };
  }

  /** The batch's gradient from the model's current parameters, clipped and compressed. */
  private async compute(
    context: TrialContext,
    work: Work__Output,
    batch: TrainBatch__Output,
    from: ComputeFrom,
  ): Promise<Computed> {
    const t = performance.now();
    const noiseKey = `${work.trial}:${work.spec?.seed ?? 0}:${batch.epoch}:${batch.batch}`;
    const examples = trainingBatch(context, batch.indices, noiseKey);
    const { loss, grads } = await context.model.gradients(
      examples.features,
      examples.labels,
      batch.indices.length,
      noiseKey,
      from.values,
    );
    finishGradient(context, grads, work.spec?.clip_norm ?? 0);
    const computeMs = performance.now() - t;
    this.lastComputeMs = computeMs;
    this.io.metrics?.observeCompute(computeMs / 1000);
    return { batch, loss, grads, version: from.version, computeMs, pullMs: from.pullMs };
  }

  /**
   * Each shard answers the push with its values (in sync mode once the step is applied), which
   * the next batch starts from instead of pulling: one call per shard and batch instead of two.
   */
  private async push(
    context: TrialContext,
    work: Work__Output,
    computed: Computed,
    lastOfBatchLease: boolean,
  ): Promise<ShardAnswer[]> {
    const { batch, version } = computed;
    const sync = work.spec?.mode === 'sync';
    const header: PushHeader = {
      fence: this.io.fence(),
      trial: work.trial,
      epoch: batch.epoch,
      batch: batch.batch,
      worker: this.io.workerId,
      version,
      step: batch.step,
      step_size: batch.step_size,
      step_wait_ms: sync ? stepWaitMs(computed.computeMs) : 0,
      codec: pushCodecOf(work.spec?.compress),
      pull_codec: context.pullCodec,
    };
    // Fault tests pause here, token in hand, to play a worker that wakes after its membership lease died.
    if (hit('stop-before-push')) process.kill(process.pid, 'SIGSTOP');
    if (lastOfBatchLease) this.io.prefetch();
    const replies = await this.io.pushPull(context, header, computed.grads, work.lease_ms);
    this.fresh = { context, version: Math.min(...replies.map((r) => r.version)) };
    this.io.pushed(context);
    // Fault tests die here: the gradient is on the shards, the coordinator never hears of it.
    if (hit('exit-after-push')) process.kill(process.pid, 'SIGKILL');
    return replies;
  }

  /**
   * The batch's outcome once its push is answered. Its push time is what the push held the
   * thread for (`issueMs`) and what the worker then waited for its answer from `waitFrom`: in
   * turn the whole round trip, overlapped what the next batch's compute did not cover.
   */
  private async landed(
    computed: Computed,
    pushing: Promise<ShardAnswer[]>,
    issueMs: number,
    waitFrom: number,
  ): Promise<BatchOutcome> {
    const replies = await pushing;
    const pushMs = issueMs + (performance.now() - waitFrom);
    this.io.metrics?.observePush(pushMs / 1000, computed.version, replies);
    return {
      loss: computed.loss,
      computeMs: computed.computeMs,
      pullMs: computed.pullMs,
      pushMs,
      duplicate: replies.some((r) => r.duplicate),
    };
  }
}
