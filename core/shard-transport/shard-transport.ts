import type { ParameterServerClient as GrpcParameterServerClient } from '../../proto/gen/caviar/v1/ParameterServer';
import type { PushHeader } from '../../proto/gen/caviar/v1/PushHeader';
import type { PushReply__Output } from '../../proto/gen/caviar/v1/PushReply';
import type { Slice } from '../placement';

export interface TransferOptions {
  signal?: AbortSignal;
  /**
   * When the shard must have answered. Defaults to the connection's deadline from the start of
   * the call; a transport that hands a call on to another passes its own, so the time it spent
   * first counts.
   */
  deadline?: Date;
}

export interface PullOptions extends TransferOptions {
  /** Wait until the shard's version reaches this. Defaults to 0 (answer at once). */
  minVersion?: number;
  /** How long the shard may wait for minVersion. Defaults to the connection's deadlineMs. */
  waitMs?: number;
  /**
   * The values as they were at this epoch's end (the snapshot `applied` took), where the shard
   * still holds it; the live ones otherwise (the result says which).
   */
  snapshotEpoch?: number;
  /** How the values travel over chunks: "" or "f32", "bf16", "fp16" (a trial's --compress-pull). */
  codec?: string;
}

/** What a pull wrote: the version of the values, and whether they are the snapshot asked for. */
export interface Pulled {
  version: number;
  fromSnapshot: boolean;
}

/** The gRPC channel to one shard that transports send their calls on. */
export interface ShardConnection {
  readonly client: GrpcParameterServerClient;
  readonly address: string;
  /** Deadline of each call (a pull's wait comes on top). */
  readonly deadlineMs: number;
}

/**
 * How a worker or the coordinator moves parameter values to and from one shard. Values are full
 * tensors by name on this side, whatever goes over the wire (chunks, a shared segment, a codec's
 * encoding), so that a transport can change how they travel without its callers knowing. A
 * failed call rejects with a ServiceError (code and details); on failure, some ranges of `into`
 * may already hold new values.
 */
export interface ShardTransport {
  /** How values travel, for the log: "chunks", "segment", or "chunks (why)". */
  readonly description: string;
  /** Sets up ahead of the first call (connects, attaches); never rejects. */
  prepare(): Promise<void>;
  /** Writes the shard's values of `slices` into the full tensors of `into`, in place. */
  pull(
    trial: string,
    slices: readonly Slice[],
    into: Map<string, Float32Array>,
    options?: PullOptions,
  ): Promise<Pulled>;
  /**
   * Sends the gradient of `slices` (from the full tensors in `grads`), then writes the shard's
   * values right after it into `into`; the reply's version is that of the values written.
   */
  pushPull(
    header: PushHeader,
    slices: readonly Slice[],
    grads: ReadonlyMap<string, Float32Array>,
    into: Map<string, Float32Array>,
    options?: TransferOptions,
  ): Promise<PushReply__Output>;
  /** Sends the gradient of `slices` (from the full tensors in `grads`) tagged with `header`. */
  push(
    header: PushHeader,
    slices: readonly Slice[],
    grads: ReadonlyMap<string, Float32Array>,
    options?: TransferOptions,
  ): Promise<PushReply__Output>;
  /** Frees what the transport holds; the connection itself is its owner's to close. */
  close(): void;
}
