import type * as grpc from '@grpc/grpc-js';
import { CHUNK_BYTES } from '../core/rpc';
import { chunkTensor, type EncodedChunk } from '../core/tensor-codec';
import type { ValueCodec } from '../core/value-codec';
import { drained } from '../core/grpc-calls';
import { EventLoopPacer } from '../core/yielding';
import type { ShardObserver } from './shard-observer';
import type { SliceRange } from './slice-assembler';

/** What slices are streamed to: a server-streaming or a bidi call. */
export type WritableCall<M> =
  grpc.ServerWritableStream<unknown, M> | grpc.ServerDuplexStream<unknown, M>;

/** Resolves once the call has sent all it was given (grpc-js serializes a message only then), or ended without. */
function settled(call: WritableCall<unknown>): Promise<void> {
  if (call.cancelled || call.writableFinished) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => resolve();
    call.once('finish', done).once('close', done).once('cancelled', done).once('error', done);
  });
}

/**
 * Writes `messages` with backpressure, the event loop let run between them, without ending the
 * call: grpc-js serializes as it is written to, and a wide flow-control window takes many
 * messages before it pushes back, so without the pauses a large trial's values would hold the
 * event loop.
 */
export async function writeMessages<M>(
  call: WritableCall<M>,
  messages: Iterable<M>,
): Promise<void> {
  const pacer = new EventLoopPacer();
  for (const msg of messages) {
    if (call.cancelled) return;
    if (call.write(msg)) {
      await pacer.pause();
    } else {
      await drained(call);
      pacer.restart();
    }
  }
}

/**
 * The chunks of `values` (aligned with `slices`) in `codec`, counted as bytes out; with `own`,
 * no chunk's bytes share the arrays' memory.
 */
export function* valueChunks(
  slices: readonly SliceRange[],
  values: readonly Float32Array[],
  codec: ValueCodec,
  observer?: ShardObserver,
  own = false,
): Generator<EncodedChunk> {
  for (const [i, s] of slices.entries()) {
    observer?.bytesOut(s.length * codec.maxBytesPerValue);
    for (const chunk of chunkTensor(s.name, s.start, values[i], CHUNK_BYTES, codec)) {
      const shared = own && chunk.data.buffer === values[i].buffer;
      yield shared ? { ...chunk, data: Buffer.from(chunk.data) } : chunk;
    }
  }
}

/**
 * Writes `head`, then `values` (aligned with `slices`) in chunks encoded by `codec`, with
 * backpressure, and ends the call; resolves once nothing will read `values` any more, so the
 * caller may change or reuse them from then on.
 */
export async function writeSlices<M>(
  call: WritableCall<M>,
  slices: readonly SliceRange[],
  values: readonly Float32Array[],
  head: M,
  codec: ValueCodec,
  observer?: ShardObserver,
): Promise<void> {
  const messages = function* (): Generator<M> {
    yield head;
    for (const chunk of valueChunks(slices, values, codec, observer)) yield { chunk } as M;
  };
  await writeMessages(call, messages());
  const sent = settled(call);
  call.end();
  await sent;
}
