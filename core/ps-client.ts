import type { ParameterServerClient as GrpcParameterServerClient } from '../proto/gen/caviar/v1/ParameterServer';
import type { InitMessage } from '../proto/gen/caviar/v1/InitMessage';
import type { InitReply__Output } from '../proto/gen/caviar/v1/InitReply';
import type { ShardStats__Output } from '../proto/gen/caviar/v1/ShardStats';
import type { CapacityRequest } from '../proto/gen/caviar/v1/CapacityRequest';
import type { ShardCapacity__Output } from '../proto/gen/caviar/v1/ShardCapacity';
import type { SeededInit } from '../proto/gen/caviar/v1/SeededInit';
import type { AppliedBatches__Output } from '../proto/gen/caviar/v1/AppliedBatches';
import type { OptimizerConfig } from './optimizer-config';
import type { Slice } from './placement';
import { CHANNEL_OPTIONS, deadlineIn, parameterServerProto } from './rpc';
import { clientStream, unaryCall } from './grpc-calls';
import { channelCredentials, type TlsIdentity } from './security/tls-identity';
import type { ShardTransport } from './shard-transport/shard-transport';
import { ChunkTransport } from './shard-transport/chunk-transport';
import { SameHostTransport } from './shard-transport/same-host-transport';
import { sliceChunks } from './shard-transport/chunk-messages';

export type { PullOptions, Pulled, TransferOptions } from './shard-transport/shard-transport';

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
  /** ssp:N: pushes computed from values more than N versions old are refused; 0 or none: no bound. */
  maxStaleness?: number;
  /** Streamed values only: the momentum of each BatchNorm moving statistic, by tensor name. */
  movingAverages?: Readonly<Record<string, number>>;
}

export const DEFAULT_PS_DEADLINE_MS = 30_000;

function isSeeded(values: ReadonlyMap<string, Float32Array> | SeededInit): values is SeededInit {
  return !(values instanceof Map);
}

/**
 * The typed client of one parameter-server shard: its admin calls, and the values' moves through
 * the transport chosen for it when it is made (core/shard-transport). Every call has a deadline
 * and takes an AbortSignal; a failed call rejects with grpc's ServiceError (code and details),
 * so callers can use isRetryable (core/call-status) and errorMessage (core/errors).
 */
export class ParameterServerClient {
  private readonly client: GrpcParameterServerClient;
  private readonly deadlineMs: number;
  private readonly values: ShardTransport;

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
    const connection = { client: this.client, address, deadlineMs: this.deadlineMs };
    const chunks = new ChunkTransport(connection);
    const dir = options.sharedMemoryDir;
    this.values = dir === undefined ? chunks : new SameHostTransport(connection, dir, chunks);
  }

  /**
   * Connects (and attaches a segment, where the shard can) ahead of the first call, so that a
   * caller can do it while it does something else. Never rejects: a failure shows at that call.
   */
  prepare(): Promise<void> {
    return this.values.prepare();
  }

  /** How values travel to and from this shard: "chunks", "segment", or "chunks (why)". */
  get transport(): string {
    return this.values.description;
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
      yield {
        header: {
          trial,
          optimizer: header.optimizer,
          mode: header.mode,
          slices,
          seeded,
          max_staleness: header.maxStaleness ?? 0,
          moving_averages: streamed ? header.movingAverages : undefined,
        },
      };
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
  readonly pull: ShardTransport['pull'] = (...call) => this.values.pull(...call);

  /**
   * Push, then the shard's values of `slices` right after it, written into `into` in place: one
   * call instead of a push and the next pull (async mode). Resolves to the push's reply, whose
   * version is that of the values written. On failure some ranges may hold the new values.
   */
  readonly pushPull: ShardTransport['pushPull'] = (...call) => this.values.pushPull(...call);

  /** Sends the gradient of `slices` (from the full tensors in `grads`) tagged with `header`. */
  readonly push: ShardTransport['push'] = (...call) => this.values.push(...call);

  /** Frees the trial on the shard; resolves to whether the shard held it. */
  async drop(trial: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const reply = await unaryCall<{ dropped: boolean }>(
      (cb) => this.client.Drop({ trial }, { deadline: deadlineIn(this.deadlineMs) }, cb),
      options.signal,
    );
    return reply.dropped;
  }

  /** Sets the trial's base learning rate on the shard. */
  async setLearningRate(trial: string, lr: number): Promise<void> {
    await unaryCall((cb) =>
      this.client.SetLearningRate({ trial, lr }, { deadline: deadlineIn(this.deadlineMs) }, cb),
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
    return unaryCall(
      (cb) => this.client.Applied(request, { deadline: deadlineIn(this.deadlineMs) }, cb),
      options.signal,
    );
  }

  /**
   * The shard's memory budget, and what slices of `request.elements` values would take of it.
   * A small question: it gets a deadline of its own (default 5 s), not the client's.
   */
  capacity(request: CapacityRequest, deadlineMs = 5_000): Promise<ShardCapacity__Output> {
    return unaryCall((cb) =>
      this.client.Capacity(request, { deadline: deadlineIn(deadlineMs) }, cb),
    );
  }

  stats(trial: string, options: { signal?: AbortSignal } = {}): Promise<ShardStats__Output> {
    return unaryCall(
      (cb) => this.client.Stats({ trial }, { deadline: deadlineIn(this.deadlineMs) }, cb),
      options.signal,
    );
  }

  close(): void {
    this.values.close();
    this.client.close();
  }
}
