import * as grpc from '@grpc/grpc-js';
import type { PushHeader__Output } from '../proto/gen/caviar/v1/PushHeader';
import type { PushReply } from '../proto/gen/caviar/v1/PushReply';
import type { ShardStats } from '../proto/gen/caviar/v1/ShardStats';
import type { AppliedBatches } from '../proto/gen/caviar/v1/AppliedBatches';
import type { CapacityRequest__Output } from '../proto/gen/caviar/v1/CapacityRequest';
import type { ShardCapacity } from '../proto/gen/caviar/v1/ShardCapacity';
import type { SeededInit__Output } from '../proto/gen/caviar/v1/SeededInit';
import { sliceElements } from '../core/placement';
import { batchOfKey } from '../core/batches';
import { hit } from '../core/fault-points';
import { runYielding } from '../core/yielding';
import { versionAfterStep } from '../core/sync-barrier';
import {
  CaviarError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotFoundError,
  errorMessage,
} from '../core/errors';
import type { OptimizerConfig } from '../core/optimizer-config';
import { MemoryAdmission } from './admission';
import { isLargeTrial } from './trial-footprint';
import { EpochSnapshots, type Snapshot } from './epoch-snapshots';
import type { ResolvedShardOptions } from './shard-options';
import { createOptimizerStates, optimizerFor } from './optimizers';
import { seededSliceValues } from './seeded-init';
import { FencedError, RefusedInputError, refusalReason, type RefusalReason } from './refusal';
import { Checkpointer } from './checkpointer';
import { SliceAssembler, SliceBufferPool, type SliceRange } from './slice-assembler';
import { TrialShard, isConsistencyMode, type ConsistencyMode, type Gradient } from './trial-shard';
import type { ShardSnapshot } from './shard-observer';
import { VersionWaits, type CancellableCall } from './version-waits';
import { answerCodec, gradientName, pushCodec } from './header-codecs';

export { gradientName } from './header-codecs';

/** An Init header once checked: what the shard needs before any value arrives. */
export interface TrialInit {
  trial: string;
  optimizer: OptimizerConfig;
  mode: ConsistencyMode;
  slices: SliceRange[];
  /** Streamed values only: BatchNorm's moving statistics, with their momentum, by tensor name. */
  movingAverages?: ReadonlyMap<string, number>;
  /** ssp:N's N; 0 or none: no bound. */
  maxStaleness?: number;
}

/** What a push came to: the reply, and the trial it went to (for a push-pull's values). */
export interface AppliedPush {
  reply: PushReply;
  trial: TrialShard;
  header: PushHeader__Output;
}

/** A push being received: the trial it named and its gradient, as its transport delivers it. */
export interface PushInProgress {
  header: PushHeader__Output;
  trial: TrialShard;
  /** A streamed gradient, chunk by chunk; undefined when the header named an applied batch. */
  assembler?: SliceAssembler;
  /** A gradient read in place (a same-host push's segment), as it applies. */
  gradient?: Gradient;
}

/** Where a transport puts the push it is receiving, so a refusal can be charged to its trial. */
export interface PushSlot {
  current?: PushInProgress;
}

/**
 * The shard itself, with no transport: the trials it holds, pushes applied (or gathered, or
 * refused) once received, version waits, values lent to pulls, epoch snapshots, admission and
 * checkpoints. The gRPC adapters beside it (chunk-rpc, segment-rpc, admin-rpc) only move bytes.
 */
export class ShardCore {
  readonly trials = new Map<string, TrialShard>();
  readonly versions: VersionWaits;
  readonly snapshots = new EpochSnapshots();
  /** Per trial (dropped with it): scratch buffers for pushes and pull copies. */
  private readonly pools = new WeakMap<TrialShard, SliceBufferPool>();
  /** Pushes naming a trial this shard does not hold; no trial to charge them to. */
  private unknownTrialPushes = 0;
  private closing = false;
  private readonly checkpointer: Checkpointer | undefined;
  private readonly admission: MemoryAdmission;

  constructor(readonly options: ResolvedShardOptions) {
    this.versions = new VersionWaits(options.id, this.trials);
    this.admission = new MemoryAdmission(options.id, options.maxMemoryBytes, this.trials);
    const policy = options.checkpoints;
    this.checkpointer =
      policy &&
      new Checkpointer(options.id, policy, () => [...this.trials.values()], options.logger);
  }

  /** Restores the newest valid checkpoint, if any. */
  async restore(): Promise<void> {
    for (const saved of (await this.checkpointer?.restore()) ?? []) {
      this.trials.set(saved.trial, TrialShard.restore(saved));
    }
    if (this.trials.size > 0) {
      this.options.logger?.info(
        { trials: [...this.trials.keys()], seq: this.checkpointer?.lastSeq },
        'restored from checkpoint',
      );
    }
  }

  /** Waiting pulls answer UNAVAILABLE; the last checkpoint is written. */
  async close(): Promise<void> {
    this.closing = true;
    this.versions.close();
    await this.checkpointer?.close();
  }

  /** Clears the trials once the transports are down. */
  forget(): void {
    this.trials.clear();
  }

  requireTrial(id: string): TrialShard {
    const trial = this.trials.get(id);
    if (!trial) throw new NotFoundError(`trial ${id} is not held by shard ${this.options.id}`);
    return trial;
  }

  /** Refuses a trial that would not fit, before anything takes its slices' memory. */
  admit(init: TrialInit): void {
    this.admission.admit({
      trial: init.trial,
      elements: sliceElements(init.slices),
      optimizer: init.optimizer.kind,
      mode: init.mode,
    });
  }

  capacity({ elements, optimizer, mode }: CapacityRequest__Output): ShardCapacity {
    if (!isConsistencyMode(mode))
      throw new InvalidArgumentError(`Capacity: mode "${mode}" is not sync or async`);
    return this.admission.capacity({ elements, optimizer, mode });
  }

  /**
   * Creates (or replaces) a trial from its initial values (streamed, one array per slice) or a
   * seed the shard draws them from; it is in a checkpoint before this resolves, so a restart
   * never loses one whole. The trial's element count.
   */
  async install(init: TrialInit, from: Float32Array[] | SeededInit__Output): Promise<number> {
    const { values, movingAverages } = Array.isArray(from)
      ? { values: from, movingAverages: init.slices.map((s) => init.movingAverages?.get(s.name)) }
      : await seededSliceValues(init.trial, from, init.slices);
    const state = await createOptimizerStates(
      optimizerFor(init.optimizer.kind),
      init.slices.map((s) => s.length),
    );
    const slices = init.slices.map((s, i) => ({
      ...s,
      values: values[i],
      state: state[i],
      movingAverage: movingAverages[i],
    }));
    const trial = new TrialShard(init.trial, init.optimizer, init.mode, slices);
    trial.maxStaleness = init.maxStaleness ?? 0;
    if (this.closing)
      throw new CaviarError(grpc.status.UNAVAILABLE, `shard ${this.options.id} is closing`);
    this.trials.set(init.trial, trial);
    this.versions.notify(init.trial);
    try {
      await this.checkpointer?.saveNow();
    } catch (err) {
      if (this.trials.get(init.trial) === trial) this.trials.delete(init.trial);
      throw new CaviarError(grpc.status.RESOURCE_EXHAUSTED, errorMessage(err), { cause: err });
    }
    return trial.elements;
  }

  /** A push whose gradient will arrive in chunks, into scratch buffers of the trial's pool. */
  receiveChunks(header: PushHeader__Output): PushInProgress {
    const trial = this.requireTrial(header.trial);
    if (trial.isDuplicate(header.epoch, header.batch)) return { header, trial };
    const codec = pushCodec(header);
    answerCodec(header); // refused before the push applies, not once its answer is due
    const buffers = this.bufferPool(trial).take();
    return {
      header,
      trial,
      assembler: new SliceAssembler(trial.slices, gradientName(header), buffers, codec),
    };
  }

  /**
   * Applies (or gathers, or refuses) one pushed gradient, which `receive` puts in the slot, and
   * counts a refusal against the trial it named.
   */
  async applyPush(receive: (slot: PushSlot) => Promise<void>): Promise<AppliedPush> {
    const slot: PushSlot = {};
    try {
      await receive(slot);
      const current = slot.current;
      if (!current) throw new RefusedInputError('bad_header', 'push stream ended without a header');
      // Updates wait while a checkpoint (or a pull) reads the trial's arrays across awaits.
      const reply = await current.trial.access.write(async () => {
        // A fenced sender is refused as such even when its batch was re-run and applied meanwhile.
        await this.checkFence(current.header);
        return await this.finishPush(current);
      });
      return { reply, trial: current.trial, header: current.header };
    } catch (err) {
      this.countRefusal(slot.current?.trial, refusalReason(err));
      throw err;
    } finally {
      // The optimizer has read the gradient (or it was refused): its buffers can serve again.
      const assembler = slot.current?.assembler;
      if (assembler) this.bufferPool(slot.current!.trial).give(assembler.buffers);
    }
  }

  /** The last check before a gradient applies: nothing awaits between it and the apply. */
  private async checkFence({ worker, fence }: PushHeader__Output): Promise<void> {
    const guard = this.options.fence;
    if (!guard || (await guard.allows(worker, fence))) return;
    throw new FencedError(
      `push from ${worker} refused: its membership lease ${fence || '(none)'} is not live`,
    );
  }

  private async finishPush({
    header,
    trial,
    assembler,
    gradient,
  }: PushInProgress): Promise<PushReply> {
    // Init or Drop may have replaced the trial while the gradient streamed in.
    if (this.trials.get(header.trial) !== trial) {
      throw new NotFoundError(
        `trial ${header.trial} was dropped or re-initialized during the push`,
      );
    }
    const grads = assembler?.finish() ?? gradient ?? [];
    // Fault tests: the push is acknowledged and lost, as by a shard that died after answering and
    // restarted from an older checkpoint once the coordinator had checked what it holds.
    if (hit('forget-push')) return { accepted: true, duplicate: false, version: trial.version };
    const before = trial.version;
    const applyBefore = trial.applySeconds;
    // In pieces, the event loop free between them; readers of the arrays wait on the lock.
    const outcome = await runYielding(trial.pushInPieces(header, grads));
    const staleness = outcome.staleness ?? before - header.version;
    if (outcome.accepted) this.options.observer?.staleness(header.trial, staleness);
    if (trial.version !== before) {
      this.options.observer?.applied(header.trial, trial.applySeconds - applyBefore);
      this.versions.notify(header.trial);
    }
    this.checkpointer?.noteChange(trial.version - before);
    return outcome;
  }

  private countRefusal(trial: TrialShard | undefined, reason: RefusalReason | undefined): void {
    if (!reason) return;
    if (trial) trial.countRefusal(reason);
    else if (reason === 'unknown_trial') this.unknownTrialPushes += 1;
  }

  /**
   * The trial a pull reads once its version reaches `minVersion` (waiting at most the shard's
   * longest pull wait), and the epoch-end snapshot asked for, if this shard holds it.
   */
  async pullSource(
    request: {
      trial: string;
      min_version: number;
      wait_ms: number;
      snapshot: boolean;
      epoch: number;
    },
    call: CancellableCall,
  ): Promise<{ trial: TrialShard; snapshot?: Snapshot }> {
    const waitFor = Math.min(request.wait_ms, this.options.maxPullWaitMs);
    const trial = await this.versions.until(request.trial, request.min_version, waitFor, call);
    return {
      trial,
      snapshot: request.snapshot ? this.snapshots.get(trial, request.epoch) : undefined,
    };
  }

  /**
   * A sync push-pull's trial once the pushed batch's step is applied, waiting at most the
   * header's step_wait_ms; past that, or without a wait, the trial as it is. The worker's next
   * batch then needs no pull: one call per batch and shard instead of a push and a waiting pull.
   */
  async afterStep(
    header: PushHeader__Output,
    trial: TrialShard,
    call: CancellableCall,
  ): Promise<TrialShard> {
    const waitMs = Math.min(header.step_wait_ms, this.options.maxPullWaitMs);
    if (trial.mode !== 'sync' || waitMs <= 0) return trial;
    try {
      return await this.versions.until(
        header.trial,
        versionAfterStep(Number(header.step)),
        waitMs,
        call,
      );
    } catch (err) {
      if (err instanceof DeadlineExceededError) return this.requireTrial(header.trial);
      throw err;
    }
  }

  /**
   * Lends the values a pull reads (a snapshot, or the live ones) to `read` with the version they
   * are at. A `slow` reader (a chunk stream over the network) of a small trial reads a copy, so
   * pushes applied meanwhile neither tear it nor wait; everyone else reads the arrays themselves,
   * the trial's updates waiting until `read` is done.
   */
  async lendValues<T>(
    trial: TrialShard,
    snapshot: Snapshot | undefined,
    slow: boolean,
    read: (values: readonly Float32Array[], version: number) => Promise<T>,
  ): Promise<T> {
    // A snapshot never changes, and is not recycled while it is being read.
    if (snapshot) {
      const done = EpochSnapshots.reading(snapshot);
      try {
        return await read(snapshot.values, snapshot.version);
      } finally {
        done();
      }
    }
    // A stalled stream of a large trial holds its updates at most until keepalive cuts it: no
    // model-sized copy.
    if (!slow || isLargeTrial(trial.elements)) {
      return trial.access.read(() =>
        read(
          trial.slices.map((s) => s.values),
          trial.version,
        ),
      );
    }
    const pool = this.bufferPool(trial);
    const copy = pool.take();
    await trial.access.read(() => trial.slices.forEach((s, i) => copy[i].set(s.values)));
    try {
      return await read(copy, trial.version);
    } finally {
      pool.give(copy);
    }
  }

  /** Scratch buffers shaped like the trial's slices, for its pushes and pulls. */
  private bufferPool(trial: TrialShard): SliceBufferPool {
    let pool = this.pools.get(trial);
    if (!pool) {
      pool = new SliceBufferPool(trial.slices);
      this.pools.set(trial, pool);
    }
    return pool;
  }

  drop(id: string): { dropped: boolean } {
    const dropped = this.trials.delete(id);
    if (dropped) {
      this.versions.notify(id);
      this.checkpointer?.noteChange();
    }
    return { dropped };
  }

  /** Panda mode: a new base learning rate for the trial, kept in the next checkpoint. */
  setLearningRate(id: string, lr: number): void {
    this.requireTrial(id).setLearningRate(lr);
    this.checkpointer?.noteChange();
  }

  /** What this shard holds, for its metrics (read at scrape time, off the push/pull paths). */
  metricsSnapshot(): ShardSnapshot {
    const c = this.checkpointer;
    return {
      shard: this.options.id,
      trials: [...this.trials.values()].map((t) => ({
        trial: t.trial,
        version: t.version,
        batchesApplied: t.batchesApplied,
        elements: t.elements,
        applySeconds: t.applySeconds,
        refused: Object.fromEntries(t.refused),
      })),
      unknownTrialPushes: this.unknownTrialPushes,
      checkpoint: c && { seq: c.lastSeq, failures: c.failures, lastSeconds: c.seconds },
    };
  }

  /**
   * A trial this shard does not hold (never initialized, or dropped) answers held = false rather
   * than NOT_FOUND. `refused.unknown_trial` is shard-wide: such pushes have no trial to charge.
   */
  stats(id: string): ShardStats {
    const trial = this.trials.get(id);
    const refused: Record<string, number> = trial ? Object.fromEntries(trial.refused) : {};
    if (this.unknownTrialPushes > 0) refused.unknown_trial = this.unknownTrialPushes;
    if (!trial) return { held: false, version: 0, batches_applied: 0, elements: 0, refused };
    return {
      held: true,
      apply_seconds: trial.applySeconds,
      checkpoint_seq: this.checkpointer?.lastSeq ?? 0,
      checkpoint_failures: this.checkpointer?.failures ?? 0,
      version: trial.version,
      batches_applied: trial.batchesApplied,
      elements: trial.elements,
      refused,
    };
  }

  /**
   * The batches the shard holds for the trial; with `snapshot`, it also keeps a copy of the
   * values as `epoch`'s end, for that epoch's evaluation.
   */
  async applied(id: string, snapshot: boolean, epoch: number): Promise<AppliedBatches> {
    const trial = this.trials.get(id);
    if (!trial) return { held: false, version: 0, epochs: [], batches: [] };
    if (snapshot) await trial.access.read(() => runYielding(this.snapshots.take(trial, epoch)));
    const pairs = trial.heldKeys().map(batchOfKey);
    return {
      held: true,
      version: trial.version,
      epochs: pairs.map((p) => p.epoch),
      batches: pairs.map((p) => p.batch),
    };
  }
}
