import * as grpc from '@grpc/grpc-js';
import type { ParameterServerClient as GrpcParameterServerClient } from '../proto/gen/caviar/v1/ParameterServer';
import type { InitMessage } from '../proto/gen/caviar/v1/InitMessage';
import type { InitReply__Output } from '../proto/gen/caviar/v1/InitReply';
import type { PushMessage } from '../proto/gen/caviar/v1/PushMessage';
import type { PushHeader } from '../proto/gen/caviar/v1/PushHeader';
import type { PushReply__Output } from '../proto/gen/caviar/v1/PushReply';
import type { PullHeader__Output } from '../proto/gen/caviar/v1/PullHeader';
import type { ShardStats__Output } from '../proto/gen/caviar/v1/ShardStats';
import type { CapacityRequest } from '../proto/gen/caviar/v1/CapacityRequest';
import type { ShardCapacity__Output } from '../proto/gen/caviar/v1/ShardCapacity';
import type { SeededInit } from '../proto/gen/caviar/v1/SeededInit';
import type { AppliedBatches__Output } from '../proto/gen/caviar/v1/AppliedBatches';
import type { TensorChunk, TensorChunk__Output } from '../proto/gen/caviar/v1/TensorChunk';
import type { OptimizerConfig } from './optimizer-config';
import { sliceElements, sliceViews, type Slice } from './placement';
import { CHANNEL_OPTIONS, deadlineIn, parameterServerProto } from './rpc';
import { chunkTensor, writeChunk, type ChunkTarget } from './tensor-codec';
import { SegmentLink, type SegmentLease } from './segment-link';
import { PushSession, callError } from './push-session';
import { channelCredentials, type TlsIdentity } from './security/tls-identity';
import { errorMessage } from './errors';

export interface ParameterServerClientOptions {
  /** Deadline of each call (a Pull's wait comes on top). Defaults to 30 s. */
  deadlineMs?: number;
  /**
   * A shared-memory folder (see core/shared-segment.ts): when the shard can attach a segment
   * created there (it runs on this machine), pulls and pushes pass their values through it
   * instead of streaming chunks. Defaults to none.
   */
  sharedMemoryDir?: string;
  /** Mutual TLS with this identity's certificate (the shard checks its role). Defaults to plaintext. */
  tls?: TlsIdentity;
}

export interface InitTrialHeader {
  /** Sent as-is: resolve it with resolveOptimizerConfig first. */
  optimizer: OptimizerConfig;
  mode: 'sync' | 'async';
  /** The slices this shard will own. */
  slices: readonly Slice[];
}

export interface PullOptions {
  /** Wait until the shard's version reaches this. Defaults to 0 (answer at once). */
  minVersion?: number;
  /** How long the shard may wait for minVersion. Defaults to the client's deadlineMs. */
  waitMs?: number;
  /**
   * The values as they were at this epoch's end (the snapshot `applied` took), where the shard
   * still holds it; the live ones otherwise (the result says which).
   */
  snapshotEpoch?: number;
  signal?: AbortSignal;
}

/** What a pull wrote: the version of the values, and whether they are the snapshot asked for. */
export interface Pulled {
  version: number;
  fromSnapshot: boolean;
}

export const DEFAULT_PS_DEADLINE_MS = 30_000;

/** Statuses with which a shard refuses a call outright, before or without touching its region. */
const DEFINITE_ANSWERS = new Set<grpc.status>([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.ALREADY_EXISTS,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNIMPLEMENTED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
]);

/** Cancels `call` when `signal` aborts (at once if it already has); returns the unsubscribe. */
function cancelOnAbort(call: { cancel(): void }, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => {};
  const onAbort = (): void => call.cancel();
  if (signal.aborted) {
    // After the current tick, so the call's callback is attached before it fires.
    queueMicrotask(onAbort);
    return () => {};
  }
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/** The chunks of `values` at each slice's range, tensor by tensor. */
function* sliceChunks(
  slices: readonly Slice[],
  values: ReadonlyMap<string, Float32Array>,
): Generator<TensorChunk> {
  let views: Float32Array[];
  try {
    views = sliceViews(slices, values);
  } catch (err) {
    throw callError(grpc.status.INVALID_ARGUMENT, errorMessage(err));
  }
  for (const [i, s] of slices.entries()) yield* chunkTensor(s.name, s.start, views[i]);
}

type Start<Req, Res> = (callback: grpc.requestCallback<Res>) => grpc.ClientWritableStream<Req>;

/**
 * Writes `messages` to `call` with backpressure, then ends the stream; stops early, without
 * ending it, once `stop()` says so (the server already answered).
 */
async function writeAll<Req>(
  call: grpc.ClientWritableStream<Req> | grpc.ClientDuplexStream<Req, unknown>,
  messages: Iterable<Req>,
  stop: () => boolean,
): Promise<void> {
  for (const msg of messages) {
    if (stop()) return;
    if (!call.write(msg)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          call.off('drain', done).off('close', done);
          resolve();
        };
        call.on('drain', done).on('close', done);
      });
    }
  }
  if (!stop()) call.end();
}

/**
 * Runs a client-streaming call: writes `messages` with backpressure, then ends the stream. Stops
 * writing as soon as the server answers (a refusal can come before the last chunk).
 */
function clientStream<Req, Res>(
  start: Start<Req, Res>,
  messages: Iterable<Req>,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    let finished = false;
    const call = start((err, reply) => {
      finished = true;
      unsubscribe();
      if (err) reject(err);
      else if (reply === undefined) reject(callError(grpc.status.INTERNAL, 'empty reply'));
      else resolve(reply);
    });
    const unsubscribe = cancelOnAbort(call, signal);
    writeAll(call, messages, () => finished).catch((err: unknown) => {
      call.cancel();
      reject(err);
    });
  });
}

/** A push's messages: the header, then the chunks of each slice of `grads`. */
function* pushMessages(
  header: PushHeader,
  slices: readonly Slice[],
  grads: ReadonlyMap<string, Float32Array>,
): Generator<PushMessage> {
  yield { header };
  for (const chunk of sliceChunks(slices, grads)) yield { chunk };
}

/** Where a pulled chunk goes: the part of the caller's full tensor that its slice covers. */
function pullTargets(slices: readonly Slice[], into: Map<string, Float32Array>) {
  return (name: string, offset: number): ChunkTarget | undefined => {
    const s = slices.find(
      (x) => x.name === name && offset >= x.start && offset < x.start + x.length,
    );
    const full = s && into.get(name);
    if (!s || !full || full.length < s.start + s.length) return undefined;
    return { array: full.subarray(s.start, s.start + s.length), start: s.start };
  };
}

function isSeeded(values: ReadonlyMap<string, Float32Array> | SeededInit): values is SeededInit {
  return !(values instanceof Map);
}

/**
 * The typed client of one parameter-server shard. Every call has a deadline and takes an
 * AbortSignal; a failed call rejects with grpc's ServiceError (code and details), so callers can
 * use isRetryable and errorMessage from core/errors.
 */
export class ParameterServerClient {
  private readonly client: GrpcParameterServerClient;
  private readonly deadlineMs: number;
  private readonly link: SegmentLink | undefined;
  /** Same-host push-pulls as messages of one stream (core/push-session.ts). */
  private readonly session: PushSession | undefined;

  constructor(
    readonly address: string,
    options: ParameterServerClientOptions = {},
  ) {
    this.deadlineMs = options.deadlineMs ?? DEFAULT_PS_DEADLINE_MS;
    if (!(Number.isFinite(this.deadlineMs) && this.deadlineMs > 0)) {
      throw new RangeError(`deadlineMs must be a positive number, got ${this.deadlineMs}`);
    }
    const Client = parameterServerProto().ParameterServer;
    this.client = new Client(address, channelCredentials(options.tls), CHANNEL_OPTIONS);
    const dir = options.sharedMemoryDir;
    this.link =
      dir === undefined
        ? undefined
        : new SegmentLink(dir, (segment, token) =>
            this.unary(
              (cb) =>
                this.client.Attach(
                  { segment, token },
                  { deadline: deadlineIn(this.deadlineMs) },
                  cb,
                ),
              undefined,
            ),
          );
    this.session =
      this.link && new PushSession(() => this.client.SegmentSession(), this.deadlineMs);
  }

  /**
   * Connects (and attaches a segment, where the shard can) ahead of the first call, so that a
   * caller can do it while it does something else. Never rejects: a failure shows at that call.
   */
  async prepare(): Promise<void> {
    if (this.link) {
      await this.link.attached();
      return;
    }
    const deadline = deadlineIn(this.deadlineMs);
    await new Promise<void>((resolve) => this.client.waitForReady(deadline, () => resolve()));
  }

  /** How values travel to and from this shard: "chunks", "segment", or "chunks (why)". */
  get transport(): string {
    return this.link?.transport ?? 'chunks';
  }

  /** A segment region for a call moving the values of `slices`, with `send` already in it. */
  private async lease(
    slices: readonly Slice[],
    send?: ReadonlyMap<string, Float32Array>,
  ): Promise<SegmentLease | undefined> {
    const lease = await this.link?.lease(slices);
    if (lease && send) {
      try {
        lease.put(send);
      } catch (err) {
        lease.end(true);
        throw callError(grpc.status.INVALID_ARGUMENT, errorMessage(err));
      }
    }
    return lease;
  }

  /**
   * Sends a request that names `lease`'s region; once it is answered, the region's values come
   * out into `into` (when given) and the region is freed.
   */
  private async viaSegment<H>(
    lease: SegmentLease,
    send: () => Promise<H>,
    into?: Map<string, Float32Array>,
  ): Promise<H> {
    try {
      const head = await send();
      if (into) lease.get(into);
      lease.end(true);
      return head;
    } catch (err) {
      // Keep the segment where the shard answered (a refusal writes nothing later); drop it where
      // it may still be at work on the region (a deadline, a cancel, a broken connection).
      lease.end(DEFINITE_ANSWERS.has((err as { code?: unknown }).code as grpc.status));
      throw err;
    }
  }

  /**
   * Creates (or replaces) the trial's slices on the shard: from `values` (full tensors by name),
   * streamed as chunks, or with a SeededInit drawn by the shard itself (nothing model-sized
   * travels or is held here). Resolves to the element count.
   */
  async init(
    trial: string,
    header: InitTrialHeader,
    values: ReadonlyMap<string, Float32Array> | SeededInit,
    options: { signal?: AbortSignal } = {},
  ): Promise<number> {
    const slices = header.slices.map(({ name, start, length }) => ({ name, start, length }));
    const seeded = isSeeded(values) ? values : undefined;
    const streamed = isSeeded(values) ? undefined : values;
    const messages = function* (): Generator<InitMessage> {
      yield { header: { trial, optimizer: header.optimizer, mode: header.mode, slices, seeded } };
      if (streamed) for (const chunk of sliceChunks(header.slices, streamed)) yield { chunk };
    };
    const callOptions = { deadline: deadlineIn(this.deadlineMs) };
    const reply = await clientStream<InitMessage, InitReply__Output>(
      (cb) => this.client.Init(callOptions, cb),
      messages(),
      options.signal,
    );
    return reply.elements;
  }

  /**
   * Writes the shard's values of `slices` into the full tensors of `into`, in place. On failure
   * some ranges may already hold the new values.
   */
  async pull(
    trial: string,
    slices: readonly Slice[],
    into: Map<string, Float32Array>,
    options: PullOptions = {},
  ): Promise<Pulled> {
    const waitMs = Math.max(0, Math.round(options.waitMs ?? this.deadlineMs));
    const snapshot = options.snapshotEpoch !== undefined;
    const request = {
      trial,
      min_version: options.minVersion ?? 0,
      wait_ms: waitMs,
      snapshot,
      epoch: options.snapshotEpoch ?? 0,
    };
    const deadline = deadlineIn(this.deadlineMs + waitMs);
    const lease = await this.lease(slices);
    if (lease) {
      const withRegion = { ...request, into: lease.region };
      const head = await this.viaSegment<PullHeader__Output>(
        lease,
        () =>
          this.unary((cb) => this.client.SegmentPull(withRegion, { deadline }, cb), options.signal),
        into,
      );
      return { version: head.version, fromSnapshot: head.from_snapshot };
    }
    const call = this.client.Pull(request, { deadline });
    return this.receiveSlices(call, `pull of ${trial}`, slices, into, options.signal, (msg) =>
      msg.header
        ? { version: msg.header.version, fromSnapshot: msg.header.from_snapshot }
        : undefined,
    );
  }

  /**
   * Push, then the shard's values of `slices` right after it, written into `into` in place: one
   * call instead of a push and the next pull (async mode). Resolves to the push's reply, whose
   * version is that of the values written. On failure some ranges may hold the new values.
   */
  async pushPull(
    header: PushHeader,
    slices: readonly Slice[],
    grads: ReadonlyMap<string, Float32Array>,
    into: Map<string, Float32Array>,
    options: { signal?: AbortSignal } = {},
  ): Promise<PushReply__Output> {
    const deadline = deadlineIn(this.deadlineMs);
    const lease = await this.lease(slices, grads);
    if (lease) {
      const withRegion = { ...header, segment: lease.region };
      return this.viaSegment(
        lease,
        () => this.segmentPushPull(withRegion, deadline, options.signal),
        into,
      );
    }
    const call = this.client.PushPull({ deadline });
    const received = this.receiveSlices(
      call,
      `push-pull of ${header.trial ?? ''}`,
      slices,
      into,
      options.signal,
      (msg) => msg.reply ?? undefined,
    );
    // A refusal ends the call early: the read side settles with its status and writing stops.
    let settled = false;
    return new Promise<PushReply__Output>((resolve, reject) => {
      received.then(resolve, reject).finally(() => (settled = true));
      writeAll(call, pushMessages(header, slices, grads), () => settled).catch((err: unknown) => {
        call.cancel();
        reject(err);
      });
    });
  }

  /**
   * Reads a stream of one leading message (`leading` says whether a message is it, and what it
   * carries: at least the version) and then chunks of `slices`, written into `into`.
   */
  private receiveSlices<
    M extends { chunk?: TensorChunk__Output | null },
    H extends { version: number },
  >(
    call: grpc.ClientReadableStream<M> | grpc.ClientDuplexStream<unknown, M>,
    what: string,
    slices: readonly Slice[],
    into: Map<string, Float32Array>,
    signal: AbortSignal | undefined,
    leading: (msg: M) => H | undefined,
  ): Promise<H> {
    const unsubscribe = cancelOnAbort(call, signal);
    const expected = sliceElements(slices);
    const resolveTarget = pullTargets(slices, into);
    let head: H | undefined;
    let received = 0;
    return new Promise((resolve, reject) => {
      const fail = (err: unknown): void => {
        unsubscribe();
        call.cancel();
        reject(err);
      };
      call.on('data', (msg: M) => {
        try {
          const first = leading(msg);
          if (first) head = first;
          else if (msg.chunk && head === undefined)
            throw new Error('a chunk came before the header');
          else if (msg.chunk) received += writeChunk(msg.chunk, resolveTarget);
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          fail(callError(grpc.status.INTERNAL, `${what} from ${this.address}: ${why}`));
        }
      });
      call.on('error', fail);
      call.on('end', () => {
        unsubscribe();
        if (head === undefined || received !== expected) {
          const got = `${what} from ${this.address} got ${received} of ${expected} elements`;
          reject(callError(grpc.status.INTERNAL, got));
        } else {
          resolve(head);
        }
      });
    });
  }

  /** A same-host push-pull on the session stream, or as a call where the shard has no sessions. */
  private async segmentPushPull(
    header: PushHeader,
    deadline: grpc.Deadline,
    signal: AbortSignal | undefined,
  ): Promise<PushReply__Output> {
    if (this.session?.supported) {
      try {
        return await this.session.request(header, signal);
      } catch (err) {
        // An older shard: it ran nothing, and the region still holds the gradient.
        if (this.session.supported) throw err;
      }
    }
    return this.unary((cb) => this.client.SegmentPushPull(header, { deadline }, cb), signal);
  }

  /** Sends the gradient of `slices` (from the full tensors in `grads`) tagged with `header`. */
  async push(
    header: PushHeader,
    slices: readonly Slice[],
    grads: ReadonlyMap<string, Float32Array>,
    options: { signal?: AbortSignal } = {},
  ): Promise<PushReply__Output> {
    const deadline = deadlineIn(this.deadlineMs);
    const lease = await this.lease(slices, grads);
    if (lease) {
      const withRegion = { ...header, segment: lease.region };
      return this.viaSegment(lease, () =>
        this.unary((cb) => this.client.SegmentPush(withRegion, { deadline }, cb), options.signal),
      );
    }
    return clientStream(
      (cb) => this.client.Push({ deadline }, cb),
      pushMessages(header, slices, grads),
      options.signal,
    );
  }

  /** Frees the trial on the shard; resolves to whether the shard held it. */
  async drop(trial: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const reply = await this.unary<{ dropped: boolean }>(
      (cb) => this.client.Drop({ trial }, { deadline: deadlineIn(this.deadlineMs) }, cb),
      options.signal,
    );
    return reply.dropped;
  }

  /** Sets the trial's base learning rate on the shard. */
  async setLearningRate(trial: string, lr: number): Promise<void> {
    await this.unary(
      (cb) =>
        this.client.SetLearningRate({ trial, lr }, { deadline: deadlineIn(this.deadlineMs) }, cb),
      undefined,
    );
  }

  /**
   * The (epoch, batch) pairs whose gradients the shard holds for the trial. With snapshotEpoch,
   * the shard also keeps a copy of the values as that epoch's end, for its evaluation's pull.
   */
  applied(
    trial: string,
    options: { signal?: AbortSignal; snapshotEpoch?: number } = {},
  ): Promise<AppliedBatches__Output> {
    const request = {
      trial,
      snapshot: options.snapshotEpoch !== undefined,
      epoch: options.snapshotEpoch ?? 0,
    };
    return this.unary(
      (cb) => this.client.Applied(request, { deadline: deadlineIn(this.deadlineMs) }, cb),
      options.signal,
    );
  }

  /**
   * The shard's memory budget, and what slices of `request.elements` values would take of it.
   * A small question: it gets a deadline of its own (default 5 s), not the client's.
   */
  capacity(request: CapacityRequest, deadlineMs = 5_000): Promise<ShardCapacity__Output> {
    return this.unary(
      (cb) => this.client.Capacity(request, { deadline: deadlineIn(deadlineMs) }, cb),
      undefined,
    );
  }

  stats(trial: string, options: { signal?: AbortSignal } = {}): Promise<ShardStats__Output> {
    return this.unary(
      (cb) => this.client.Stats({ trial }, { deadline: deadlineIn(this.deadlineMs) }, cb),
      options.signal,
    );
  }

  close(): void {
    this.session?.close();
    this.link?.close();
    this.client.close();
  }

  private unary<Res>(
    start: (callback: grpc.requestCallback<Res>) => grpc.ClientUnaryCall,
    signal: AbortSignal | undefined,
  ): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const call = start((err, reply) => {
        unsubscribe();
        if (err) reject(err);
        else if (reply === undefined) reject(callError(grpc.status.INTERNAL, 'empty reply'));
        else resolve(reply);
      });
      const unsubscribe = cancelOnAbort(call, signal);
    });
  }
}
