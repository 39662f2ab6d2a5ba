import { sliceElements } from '../core/placement';
import * as grpc from '@grpc/grpc-js';
import type { InitHeader__Output } from '../proto/gen/caviar/v1/InitHeader';
import type { InitMessage__Output } from '../proto/gen/caviar/v1/InitMessage';
import type { InitReply } from '../proto/gen/caviar/v1/InitReply';
import type { ParameterServerHandlers } from '../proto/gen/caviar/v1/ParameterServer';
import type { PullMessage } from '../proto/gen/caviar/v1/PullMessage';
import type { PullHeader } from '../proto/gen/caviar/v1/PullHeader';
import type { PullRequest__Output } from '../proto/gen/caviar/v1/PullRequest';
import type { PushHeader__Output } from '../proto/gen/caviar/v1/PushHeader';
import type { PushMessage__Output } from '../proto/gen/caviar/v1/PushMessage';
import type { PushReply } from '../proto/gen/caviar/v1/PushReply';
import type { SessionReply } from '../proto/gen/caviar/v1/SessionReply';
import type { PushPullMessage } from '../proto/gen/caviar/v1/PushPullMessage';
import type { ShardStats } from '../proto/gen/caviar/v1/ShardStats';
import { MemoryAdmission } from './admission';
import { isLargeTrial } from './trial-footprint';
import { EpochSnapshots, type Snapshot } from './epoch-snapshots';
import { resolveShardOptions, type ResolvedShardOptions, type ShardOptions } from './shard-options';
import { writeSlices, type WritableCall } from './slice-stream';
import { runYielding } from '../core/yielding';
import { createOptimizerStates, optimizerFor } from './optimizers';
import { seededSliceValues } from './seeded-init';
import type { SeededInit__Output } from '../proto/gen/caviar/v1/SeededInit';
import {
  CaviarError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotFoundError,
  toServiceError,
  errorMessage,
} from '../core/errors';
import { validateOptimizerConfig, type OptimizerConfig } from '../core/optimizer-config';
import { SERVER_OPTIONS, bindServer, parameterServerProto } from '../core/rpc';
import { serverCredentials } from '../core/security/tls-identity';
import { SHARD_ACCESS, guardedServerOptions } from '../core/security/rpc-access';
import { FencedError, RefusedInputError, refusalReason, type RefusalReason } from './refusal';
import { Checkpointer } from './checkpointer';
import { batchOfKey } from '../core/batches';
import type { AppliedBatches } from '../proto/gen/caviar/v1/AppliedBatches';
import type { AppliedRequest__Output } from '../proto/gen/caviar/v1/AppliedRequest';
import { hit } from '../core/fault-points';
import {
  SliceAssembler,
  SliceBufferPool,
  validateSliceRanges,
  type SliceRange,
} from './slice-assembler';
import { AttachedSegments } from './attached-segments';
import type { SegmentRegion__Output } from '../proto/gen/caviar/v1/SegmentRegion';
import { TrialShard, isConsistencyMode, type ConsistencyMode, type Gradient } from './trial-shard';
import type { ShardSnapshot } from './shard-observer';

export type { ShardOptions } from './shard-options';

type Waiter = () => void;

/** A pushed gradient as refusals name it. */
const gradientName = ({ trial, epoch, batch }: PushHeader__Output): string =>
  `gradient of trial ${trial} (epoch ${epoch}, batch ${batch})`;

const liveValues = (trial: TrialShard): Float32Array[] => trial.slices.map((s) => s.values);

/** Feeds each message of a client stream to `onMessage`; settles at its end or first failure. */
/** What consume reads: a client-streaming or a bidi call. */
type ReadableCall<T> = grpc.ServerReadableStream<T, unknown> | grpc.ServerDuplexStream<T, unknown>;

function consume<T>(call: ReadableCall<T>, onMessage: (msg: T) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      reject(err);
    };
    // Messages after a failure are still read (and dropped) so the stream drains.
    call.on('data', (msg: T) => {
      if (failed) return;
      try {
        onMessage(msg);
      } catch (err) {
        fail(err);
      }
    });
    call.on('end', () => {
      if (!failed) resolve();
    });
    call.on('error', fail);
    call.on('cancelled', () =>
      fail(new CaviarError(grpc.status.CANCELLED, 'cancelled by the client')),
    );
  });
}

interface ValidInitHeader {
  trial: string;
  optimizer: OptimizerConfig;
  mode: ConsistencyMode;
  slices: SliceRange[];
}

function validateInitHeader(header: InitHeader__Output): ValidInitHeader {
  const { trial, optimizer, mode, slices } = header;
  if (!trial) throw new InvalidArgumentError('Init header has an empty trial id');
  if (!optimizer) throw new InvalidArgumentError(`Init of trial ${trial} has no optimizer config`);
  if (!isConsistencyMode(mode)) {
    throw new InvalidArgumentError(`Init of trial ${trial}: mode "${mode}" is not sync or async`);
  }
  validateSliceRanges(slices);
  return { trial, optimizer: validateOptimizerConfig(optimizer), mode, slices };
}

/** Fault tests lose a push's reply after it applied: the retry must be deduplicated. */
function dropPushReplyUnderFault(
  callback: grpc.sendUnaryData<PushReply>,
): grpc.sendUnaryData<PushReply> {
  return (err, value) => (hit('drop-push-reply') && !err ? undefined : callback(err, value));
}

/** A streamed Pull or a same-host SegmentPull. */
type PullCall =
  | grpc.ServerWritableStream<PullRequest__Output, PullMessage>
  | grpc.ServerUnaryCall<PullRequest__Output, unknown>;

/** A call that can be cancelled while it waits for a version: a pull's or a push-pull's. */
interface WaitingCall {
  on(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

/** What a push came to: the reply, and the trial it went to (for PushPull's values). */
interface AppliedPush {
  reply: PushReply;
  trial: TrialShard;
  header: PushHeader__Output;
}

/** A push being received: the trial it named (when found) and its gradient so far. */
interface PushInProgress {
  header: PushHeader__Output;
  trial: TrialShard;
  /** Undefined when the header already named an applied batch: the chunks are then ignored. */
  assembler?: SliceAssembler;
  /** A same-host push's gradient, read from its segment as it applies. */
  gradient?: Gradient;
}

/**
 * A parameter-server shard: holds slices of many trials' parameters and applies their optimizers
 * when gradients arrive. Use with `await using`, or call `close`.
 */
export class ParameterServerShard {
  readonly options: ResolvedShardOptions;
  private readonly trials = new Map<string, TrialShard>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Per trial (dropped with it): scratch buffers for pushes and pull snapshots. */
  private readonly pools = new WeakMap<TrialShard, SliceBufferPool>();
  private readonly snapshots = new EpochSnapshots();
  /** Pushes naming a trial this shard does not hold; no trial to charge them to. */
  private unknownTrialPushes = 0;
  private server: grpc.Server | undefined;
  private closing = false;
  /** Open SegmentSession streams, each ended (after its request in hand) when the shard closes. */
  private readonly sessions = new Map<
    grpc.ServerDuplexStream<PushHeader__Output, SessionReply>,
    () => void
  >();
  private readonly checkpointer: Checkpointer | undefined;
  private readonly segments: AttachedSegments;
  private readonly admission: MemoryAdmission;

  constructor(options: ShardOptions = {}) {
    this.options = resolveShardOptions(options);
    this.admission = new MemoryAdmission(this.options.id, this.options.maxMemoryBytes, this.trials);
    this.segments = new AttachedSegments(this.options.sharedMemoryDir, this.options.id);
    const policy = this.options.checkpoints;
    this.checkpointer =
      policy &&
      new Checkpointer(
        this.options.id,
        policy,
        () => [...this.trials.values()],
        this.options.logger,
      );
  }

  /** Restores the newest valid checkpoint (if any), starts serving, returns "host:port". */
  async start(): Promise<string> {
    if (this.server || this.closing)
      throw new Error(`shard ${this.options.id} was already started`);
    for (const saved of (await this.checkpointer?.restore()) ?? []) {
      this.trials.set(saved.trial, TrialShard.restore(saved));
    }
    if (this.trials.size > 0) {
      this.options.logger?.info(
        { trials: [...this.trials.keys()], seq: this.checkpointer?.lastSeq },
        'restored from checkpoint',
      );
    }
    const { tls } = this.options;
    const server = new grpc.Server(guardedServerOptions(SERVER_OPTIONS, tls, SHARD_ACCESS));
    server.addService(parameterServerProto().ParameterServer.service, this.handlers());
    this.server = server;
    return bindServer(server, this.options.host, this.options.port, serverCredentials(tls));
  }

  /** Stops serving: waiting pulls answer UNAVAILABLE, other calls get closeGraceMs to finish. */
  async close(): Promise<void> {
    const server = this.server;
    this.closing = true;
    this.server = undefined;
    for (const trial of this.waiters.keys()) this.notify(trial);
    // A session stream lasts as long as its worker: ended here, or shutdown would wait it out.
    for (const endSession of this.sessions.values()) endSession();
    await this.checkpointer?.close();
    this.segments.close();
    if (!server) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, this.options.closeGraceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.trials.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private handlers(): ParameterServerHandlers {
    return {
      Init: (call, callback) => this.reply(() => this.init(call), callback),
      Push: (call, callback) =>
        this.reply(async () => (await this.push(call)).reply, dropPushReplyUnderFault(callback)),
      Pull: (call) => {
        this.pull(call).catch((err: unknown) => call.emit('error', this.toStatus(err, 'Pull')));
      },
      PushPull: (call) => {
        this.pushPull(call).catch((err: unknown) =>
          call.emit('error', this.toStatus(err, 'PushPull')),
        );
      },
      Attach: (call, callback) =>
        this.reply(() => this.segments.attach(call.request.segment, call.request.token), callback),
      SegmentPush: (call, callback) =>
        this.reply(
          async () => (await this.pushFromSegment(call.request)).reply,
          dropPushReplyUnderFault(callback),
        ),
      SegmentPushPull: (call, callback) =>
        this.reply(
          () => this.segmentPushPull(call.request, call),
          dropPushReplyUnderFault(callback),
        ),
      SegmentSession: (call) => this.segmentSession(call),
      SegmentPull: (call, callback) => this.reply(() => this.pullIntoSegment(call), callback),
      Drop: (call, callback) => this.reply(() => this.drop(call.request.trial), callback),
      Stats: (call, callback) => this.reply(() => this.stats(call.request.trial), callback),
      Applied: (call, callback) => this.reply(() => this.applied(call.request), callback),
      Capacity: (call, callback) =>
        this.reply(() => {
          const { elements, optimizer, mode } = call.request;
          if (!isConsistencyMode(mode))
            throw new InvalidArgumentError(`Capacity: mode "${mode}" is not sync or async`);
          return this.admission.capacity({ elements, optimizer, mode });
        }, callback),
      SetLearningRate: (call, callback) =>
        this.reply(() => {
          const trial = this.requireTrial(call.request.trial);
          trial.setLearningRate(call.request.lr);
          this.checkpointer?.noteChange();
          return { dropped: false };
        }, callback),
    };
  }

  /** The one place where a handler's outcome becomes a gRPC reply or status. */
  private reply<T>(run: () => T | Promise<T>, callback: grpc.sendUnaryData<T>): void {
    Promise.resolve()
      .then(run)
      .then(
        (value) => callback(null, value),
        (err: unknown) => callback(this.toStatus(err, 'call')),
      );
  }

  private toStatus(err: unknown, what: string): Partial<grpc.ServiceError> {
    const serviceError = toServiceError(err);
    if (serviceError.code === grpc.status.INTERNAL)
      this.options.logger?.error({ err }, `${what} failed`);
    else
      this.options.logger?.debug(
        { code: serviceError.code, details: serviceError.details },
        `${what} refused`,
      );
    return serviceError;
  }

  private async init(
    call: grpc.ServerReadableStream<InitMessage__Output, InitReply>,
  ): Promise<InitReply> {
    let header: ValidInitHeader | undefined;
    let assembler: SliceAssembler | undefined;
    let seeded: SeededInit__Output | null = null;
    await consume(call, (msg) => {
      if (msg.header) {
        if (header)
          throw new InvalidArgumentError(`Init of trial ${header.trial} sent a second header`);
        header = validateInitHeader(msg.header);
        // Before the assembler takes the slices' memory.
        this.admission.admit({
          trial: header.trial,
          elements: sliceElements(header.slices),
          optimizer: header.optimizer.kind,
          mode: header.mode,
        });
        seeded = msg.header.seeded;
        if (!seeded)
          assembler = new SliceAssembler(header.slices, `initial values of trial ${header.trial}`);
      } else if (msg.chunk) {
        if (seeded) throw new InvalidArgumentError('a seeded Init takes no chunks');
        if (!assembler)
          throw new InvalidArgumentError('Init stream sent a chunk before its header');
        assembler.add(msg.chunk);
      }
    });
    if (!header) throw new InvalidArgumentError('Init stream ended without a header');
    const { values, movingAverages } = seeded
      ? await seededSliceValues(header.trial, seeded, header.slices)
      : { values: assembler!.finish(), movingAverages: [] };
    const state = await createOptimizerStates(
      optimizerFor(header.optimizer.kind),
      header.slices.map((s) => s.length),
    );
    const slices = header.slices.map((s, i) => ({
      ...s,
      values: values[i],
      state: state[i],
      movingAverage: movingAverages[i],
    }));
    const trial = new TrialShard(header.trial, header.optimizer, header.mode, slices);
    if (this.closing)
      throw new CaviarError(grpc.status.UNAVAILABLE, `shard ${this.options.id} is closing`);
    this.trials.set(header.trial, trial);
    this.notify(header.trial);
    // Every trial is in a checkpoint before its Init returns, so a restart never loses one whole.
    try {
      await this.checkpointer?.saveNow();
    } catch (err) {
      if (this.trials.get(header.trial) === trial) this.trials.delete(header.trial);
      throw new CaviarError(grpc.status.RESOURCE_EXHAUSTED, errorMessage(err), { cause: err });
    }
    return { elements: trial.elements };
  }

  /** A streamed push: its header, then chunks. */
  private push(call: ReadableCall<PushMessage__Output>): Promise<AppliedPush> {
    return this.applyPush(async (slot) => {
      await consume(call, (msg) => {
        const current = slot.current;
        if (msg.header) {
          if (current)
            throw new RefusedInputError(
              'bad_header',
              `push for trial ${current.header.trial} sent a second header`,
            );
          if (msg.header.segment)
            throw new RefusedInputError('bad_header', 'a streamed push named a segment region');
          slot.current = this.beginPush(msg.header);
        } else if (msg.chunk) {
          if (!current)
            throw new RefusedInputError('bad_header', 'push stream sent a chunk before its header');
          current.assembler?.add(msg.chunk);
          this.options.observer?.bytesIn(msg.chunk.data.length);
        }
      });
    });
  }

  /** A same-host push: the gradient is in the segment region its header names. */
  private pushFromSegment(header: PushHeader__Output): Promise<AppliedPush> {
    return this.applyPush(async (slot) => {
      const segment = header.segment;
      if (!segment) throw new RefusedInputError('bad_header', 'the push names no segment region');
      const trial = this.requireTrial(header.trial);
      const current: PushInProgress = (slot.current = { header, trial });
      if (!trial.isDuplicate(header.epoch, header.batch)) {
        const gradient = this.segments.gradient(segment, trial.slices);
        await runYielding(gradient.check(gradientName(header)));
        current.gradient = gradient;
        this.options.observer?.bytesIn(trial.elements * 4);
      }
    });
  }

  /**
   * Applies (or gathers, or refuses) one pushed gradient, which `receive` puts in the slot; the
   * trial it went to, for PushPull.
   */
  private async applyPush(
    receive: (slot: { current?: PushInProgress }) => Promise<void>,
  ): Promise<AppliedPush> {
    const slot: { current?: PushInProgress } = {};
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

  /** Scratch buffers shaped like the trial's slices, for its pushes and pulls. */
  private bufferPool(trial: TrialShard): SliceBufferPool {
    let pool = this.pools.get(trial);
    if (!pool) {
      pool = new SliceBufferPool(trial.slices);
      this.pools.set(trial, pool);
    }
    return pool;
  }

  private beginPush(header: PushHeader__Output): PushInProgress {
    const trial = this.requireTrial(header.trial);
    if (trial.isDuplicate(header.epoch, header.batch)) return { header, trial };
    const buffers = this.bufferPool(trial).take();
    return {
      header,
      trial,
      assembler: new SliceAssembler(trial.slices, gradientName(header), buffers),
    };
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
    if (trial.version !== before)
      this.options.observer?.applied(header.trial, trial.applySeconds - applyBefore);
    if (trial.version !== before) this.notify(header.trial);
    this.checkpointer?.noteChange(trial.version - before);
    return outcome;
  }

  private countRefusal(trial: TrialShard | undefined, reason: RefusalReason | undefined): void {
    if (!reason) return;
    if (trial) trial.countRefusal(reason);
    else if (reason === 'unknown_trial') this.unknownTrialPushes += 1;
  }

  private async pull(
    call: grpc.ServerWritableStream<PullRequest__Output, PullMessage>,
  ): Promise<void> {
    const { trial, snapshot } = await this.pullSource(call);
    await this.streamSlices(
      call,
      trial,
      (version) => ({ header: { version, from_snapshot: snapshot !== undefined } }),
      snapshot,
    );
  }

  /**
   * The trial a pull reads once its version reaches the pull's min_version, and the epoch-end
   * snapshot the pull asks for, if this shard holds it.
   */
  private async pullSource(call: PullCall): Promise<{ trial: TrialShard; snapshot?: Snapshot }> {
    const { trial: id, min_version: minVersion, wait_ms: waitMs } = call.request;
    const waitFor = Math.min(waitMs, this.options.maxPullWaitMs);
    const trial = await this.waitForVersion(id, minVersion, waitFor, call);
    const { snapshot, epoch } = call.request;
    return { trial, snapshot: snapshot ? this.snapshots.get(trial, epoch) : undefined };
  }

  /** A same-host pull: the slices go into the region the request names. */
  private async pullIntoSegment(
    call: grpc.ServerUnaryCall<PullRequest__Output, unknown>,
  ): Promise<PullHeader> {
    const into = call.request.into;
    if (!into) throw new InvalidArgumentError('the pull names no segment region');
    const { trial, snapshot } = await this.pullSource(call);
    // Marked as read at once: a snapshot taken meanwhile must not recycle its arrays.
    const done = snapshot ? EpochSnapshots.reading(snapshot) : () => undefined;
    let version: number;
    try {
      version = await trial.access.read(() => this.writeToSegment(into, trial, snapshot));
    } finally {
      done();
    }
    return { version, from_snapshot: snapshot !== undefined };
  }

  /** Writes the trial's slices (or a snapshot of them) into `region`; the version they are at. */
  private async writeToSegment(
    region: SegmentRegion__Output,
    trial: TrialShard,
    snapshot?: Snapshot,
  ): Promise<number> {
    const values = snapshot?.values ?? liveValues(trial);
    const version = snapshot?.version ?? trial.version;
    await runYielding(this.segments.write(region, trial.slices, values));
    this.options.observer?.bytesOut(trial.elements * 4);
    return version;
  }

  /** A same-host push, then the values written back into its region. */
  private async segmentPushPull(header: PushHeader__Output, call: WaitingCall): Promise<PushReply> {
    const { reply, trial } = await this.pushFromSegment(header);
    const after = await this.afterStep(header, trial, call);
    const version = await after.access.read(() => this.writeToSegment(header.segment!, after));
    return { ...reply, version };
  }

  /**
   * SegmentPushPulls as the messages of one stream, run one after another and answered in order,
   * a refusal as a status in its answer (the stream goes on). The stream ends when the worker's
   * does, or when the shard closes.
   */
  private segmentSession(call: grpc.ServerDuplexStream<PushHeader__Output, SessionReply>): void {
    let previous = Promise.resolve();
    call.on('data', (header: PushHeader__Output) => {
      if (!this.sessions.has(call)) return; // ended: the worker sees the end and retries
      previous = previous.then(async () => {
        let answer: SessionReply;
        try {
          answer = { reply: await this.segmentPushPull(header, call) };
        } catch (err) {
          const status = this.toStatus(err, 'SegmentSession');
          answer = { refused: { code: status.code, details: status.details } };
        }
        // Fault tests lose this answer after the push applied: the retry must be deduplicated.
        if (answer.reply && hit('drop-push-reply')) return;
        if (!call.cancelled) call.write(answer);
      });
    });
    const endSession = (): void => {
      this.sessions.delete(call);
      void previous.then(() => call.end());
    };
    this.sessions.set(call, endSession);
    call.on('end', endSession);
    call.on('cancelled', () => this.sessions.delete(call));
    call.on('error', () => this.sessions.delete(call));
  }

  /** Push, then the trial's slices right after it, on one call (async-mode workers). */
  private async pushPull(
    call: grpc.ServerDuplexStream<PushMessage__Output, PushPullMessage>,
  ): Promise<void> {
    const { reply, trial, header } = await this.push(call);
    // Fault tests lose this reply after the push applied: the retry must be deduplicated.
    if (hit('drop-push-reply')) return;
    const after = await this.afterStep(header, trial, call);
    await this.streamSlices(call, after, (version) => ({ reply: { ...reply, version } }));
  }

  /**
   * A sync push-pull's trial once the pushed batch's step is applied, waiting at most the
   * header's step_wait_ms; past that, or without a wait, the trial as it is. The worker's next
   * batch then needs no pull: one call per batch and shard instead of a push and a waiting pull.
   */
  private async afterStep(
    header: PushHeader__Output,
    trial: TrialShard,
    call: WaitingCall,
  ): Promise<TrialShard> {
    const waitMs = Math.min(header.step_wait_ms, this.options.maxPullWaitMs);
    if (trial.mode !== 'sync' || waitMs <= 0) return trial;
    try {
      return await this.waitForVersion(header.trial, Number(header.step) + 1, waitMs, call);
    } catch (err) {
      if (err instanceof DeadlineExceededError) return this.requireTrial(header.trial);
      throw err;
    }
  }

  /**
   * Writes `first` (given the version the slices are at), then the trial's slices in chunks,
   * with backpressure, and ends the call.
   */
  private async streamSlices<M extends PullMessage | PushPullMessage>(
    call: WritableCall<M>,
    trial: TrialShard,
    first: (version: number) => M,
    snapshot?: Snapshot,
  ): Promise<void> {
    const observer = this.options.observer;
    // A snapshot never changes: it streams as it is, and is not recycled until the stream ends.
    if (snapshot) {
      const done = EpochSnapshots.reading(snapshot);
      try {
        await writeSlices(call, trial.slices, snapshot.values, first(snapshot.version), observer);
      } finally {
        done();
      }
      return;
    }
    // A large trial streams its live arrays, its updates waiting until the stream has gone out
    // (a stalled client holds them at most until keepalive cuts it): no model-sized copy.
    if (isLargeTrial(trial.elements)) {
      await trial.access.read(() =>
        writeSlices(call, trial.slices, liveValues(trial), first(trial.version), observer),
      );
      return;
    }
    // A small one streams a copy, so pushes applied meanwhile neither tear it nor wait.
    const pool = this.bufferPool(trial);
    const copy = pool.take();
    await trial.access.read(() => trial.slices.forEach((s, i) => copy[i].set(s.values)));
    try {
      await writeSlices(call, trial.slices, copy, first(trial.version), observer);
    } finally {
      pool.give(copy);
    }
  }

  /** The trial once its version reaches `minVersion`; DEADLINE_EXCEEDED after `waitMs`. */
  private waitForVersion(
    id: string,
    minVersion: number,
    waitMs: number,
    call: WaitingCall,
  ): Promise<TrialShard> {
    const ready = this.requireTrial(id);
    if (ready.version >= minVersion) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const settle = (err: Error | null, trial?: TrialShard): void => {
        clearTimeout(timer);
        call.off('cancelled', onCancel);
        this.waiters.get(id)?.delete(check);
        if (this.waiters.get(id)?.size === 0) this.waiters.delete(id);
        if (trial) resolve(trial);
        else reject(err);
      };
      const check: Waiter = () => {
        const trial = this.trials.get(id);
        if (this.closing)
          settle(new CaviarError(grpc.status.UNAVAILABLE, `shard ${this.options.id} is closing`));
        else if (!trial)
          settle(new NotFoundError(`trial ${id} was dropped from shard ${this.options.id}`));
        else if (trial.version >= minVersion) settle(null, trial);
      };
      const onCancel = (): void =>
        settle(new CaviarError(grpc.status.CANCELLED, 'pull cancelled by the client'));
      const timer = setTimeout(() => {
        const version = this.trials.get(id)?.version ?? 0;
        settle(
          new DeadlineExceededError(
            `trial ${id} is at version ${version} on shard ${this.options.id}; ` +
              `waited ${waitMs} ms for version ${minVersion}`,
          ),
        );
      }, waitMs);
      timer.unref();
      call.on('cancelled', onCancel);
      this.waiters.set(id, (this.waiters.get(id) ?? new Set<Waiter>()).add(check));
    });
  }

  /** Lets waiting pulls of `trial` look again (its version changed, or it was replaced or dropped). */
  private notify(trial: string): void {
    for (const check of [...(this.waiters.get(trial) ?? [])]) check();
  }

  private drop(id: string): { dropped: boolean } {
    const dropped = this.trials.delete(id);
    if (dropped) this.notify(id);
    if (dropped) this.checkpointer?.noteChange();
    return { dropped };
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
  private stats(id: string): ShardStats {
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

  private async applied({
    trial: id,
    snapshot,
    epoch,
  }: AppliedRequest__Output): Promise<AppliedBatches> {
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

  private requireTrial(id: string): TrialShard {
    const trial = this.trials.get(id);
    if (!trial) throw new NotFoundError(`trial ${id} is not held by shard ${this.options.id}`);
    return trial;
  }
}
