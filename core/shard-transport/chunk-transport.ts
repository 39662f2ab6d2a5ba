import * as grpc from '@grpc/grpc-js';
import type { PushHeader } from '../../proto/gen/caviar/v1/PushHeader';
import type { PushReply__Output } from '../../proto/gen/caviar/v1/PushReply';
import type { TensorChunk__Output } from '../../proto/gen/caviar/v1/TensorChunk';
import { sliceElements, type Slice } from '../placement';
import { deadlineIn } from '../rpc';
import type { ChunkSessionAnswer__Output } from '../../proto/gen/caviar/v1/ChunkSessionAnswer';
import type { ChunkSessionRequest } from '../../proto/gen/caviar/v1/ChunkSessionRequest';
import { writeChunk } from '../tensor-codec';
import { pullValueCodec, type ValueCodec } from '../value-codec';
import { errorMessage } from '../errors';
import { callError, cancelOnAbort, clientStream, writeAll } from '../grpc-calls';
import { PushSession } from '../push-session';
import { pullRequest } from './pull-request';
import { pullTargets, pushMessages } from './chunk-messages';
import { chunkSessionAnswer, sessionRequest } from './chunk-session';
import type { ShardConnection, ShardTransport } from './shard-transport';

/** Where a call's values go, and how they come encoded. */
interface ReceivedSlices {
  slices: readonly Slice[];
  into: Map<string, Float32Array>;
  codec: ValueCodec;
  signal: AbortSignal | undefined;
}

/** The codec a request names for the values coming back; INVALID_ARGUMENT before anything is sent. */
function valuesCodec(name: string | undefined): ValueCodec {
  try {
    return pullValueCodec(name ?? '');
  } catch (err) {
    throw callError(grpc.status.INVALID_ARGUMENT, errorMessage(err));
  }
}

/**
 * Values as streams of chunks, each well under gRPC's message limit: works across machines.
 * Push-pulls go as requests on one long-lived ChunkSession stream (core/push-session.ts), or as
 * a PushPull call each to a shard without sessions.
 */
export class ChunkTransport implements ShardTransport {
  readonly description = 'chunks';
  private readonly session: PushSession<ChunkSessionRequest, ChunkSessionAnswer__Output>;

  constructor(private readonly connection: ShardConnection) {
    this.session = new PushSession(() => connection.client.ChunkSession(), connection.deadlineMs);
  }

  async prepare(): Promise<void> {
    const deadline = deadlineIn(this.connection.deadlineMs);
    await new Promise<void>((resolve) =>
      this.connection.client.waitForReady(deadline, () => resolve()),
    );
  }

  readonly pull: ShardTransport['pull'] = (trial, slices, into, options = {}) => {
    const { request, deadline } = pullRequest(trial, options, this.connection.deadlineMs);
    const codec = valuesCodec(request.codec);
    const call = this.connection.client.Pull(request, { deadline });
    const pulled = { slices, into, codec, signal: options.signal };
    return this.receiveSlices(call, `pull of ${trial}`, pulled, (msg) =>
      msg.header
        ? { version: msg.header.version, fromSnapshot: msg.header.from_snapshot }
        : undefined,
    );
  };

  readonly pushPull: ShardTransport['pushPull'] = async (
    header,
    slices,
    grads,
    into,
    options = {},
  ) => {
    const codec = valuesCodec(header.pull_codec);
    const pulled = { slices, into, codec, signal: options.signal };
    return this.session.requestOr(
      sessionRequest(header, slices, grads),
      chunkSessionAnswer(slices, into, codec),
      () => this.pushPullCall(header, grads, pulled, options.deadline),
      options.signal,
      options.deadline,
    );
  };

  /** A push-pull as a PushPull call of its own. */
  private pushPullCall(
    header: PushHeader,
    grads: ReadonlyMap<string, Float32Array>,
    pulled: ReceivedSlices,
    deadline = deadlineIn(this.connection.deadlineMs),
  ): Promise<PushReply__Output> {
    const { slices } = pulled;
    const call = this.connection.client.PushPull({ deadline });
    const received = this.receiveSlices(
      call,
      `push-pull of ${header.trial ?? ''}`,
      pulled,
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

  readonly push: ShardTransport['push'] = (header, slices, grads, options = {}) => {
    const deadline = options.deadline ?? deadlineIn(this.connection.deadlineMs);
    return clientStream(
      (cb) => this.connection.client.Push({ deadline }, cb),
      pushMessages(header, slices, grads),
      options.signal,
    );
  };

  close(): void {
    this.session.close();
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
    { slices, into, codec, signal }: ReceivedSlices,
    leading: (msg: M) => H | undefined,
  ): Promise<H> {
    const from = `${what} from ${this.connection.address}`;
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
          else if (msg.chunk) received += writeChunk(msg.chunk, resolveTarget, codec);
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          fail(callError(grpc.status.INTERNAL, `${from}: ${why}`));
        }
      });
      call.on('error', fail);
      call.on('end', () => {
        unsubscribe();
        if (head === undefined || received !== expected) {
          reject(
            callError(grpc.status.INTERNAL, `${from} got ${received} of ${expected} elements`),
          );
        } else {
          resolve(head);
        }
      });
    });
  }
}
