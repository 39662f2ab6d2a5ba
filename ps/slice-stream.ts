import type * as grpc from '@grpc/grpc-js';
import { chunkTensor } from '../core/tensor-codec';
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
 * Writes `head`, then `values` (aligned with `slices`) in chunks, with backpressure, and ends the
 * call; resolves once nothing will read `values` any more, so the caller may change or reuse
 * them from then on.
 */
export async function writeSlices<M>(
  call: WritableCall<M>,
  slices: readonly SliceRange[],
  values: readonly Float32Array[],
  head: M,
  observer?: ShardObserver,
): Promise<void> {
  const messages = function* (): Generator<M> {
    yield head;
    for (const [i, s] of slices.entries()) {
      observer?.bytesOut(s.length * 4);
      for (const chunk of chunkTensor(s.name, s.start, values[i])) yield { chunk } as M;
    }
  };
  // grpc-js serializes as it is written to, and a wide flow-control window takes many messages
  // before it pushes back: without the pauses a large trial's pull would hold the event loop.
  const pacer = new EventLoopPacer();
  for (const msg of messages()) {
    if (call.cancelled) return;
    if (call.write(msg)) {
      await pacer.pause();
    } else {
      await drained(call);
      pacer.restart();
    }
  }
  const sent = settled(call);
  call.end();
  await sent;
}
