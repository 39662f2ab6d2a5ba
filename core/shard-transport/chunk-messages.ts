import * as grpc from '@grpc/grpc-js';
import type { PushHeader } from '../../proto/gen/caviar/v1/PushHeader';
import type { PushMessage } from '../../proto/gen/caviar/v1/PushMessage';
import { sliceViews, type Slice } from '../placement';
import { chunkTensor, type ChunkTarget, type EncodedChunk } from '../tensor-codec';
import { valueCodec, type ValueCodec } from '../value-codec';
import { CHUNK_BYTES } from '../rpc';
import { callError } from '../grpc-calls';
import { errorMessage } from '../errors';

/** The chunks of `values` at each slice's range, tensor by tensor, encoded by `codec`. */
export function* sliceChunks(
  slices: readonly Slice[],
  values: ReadonlyMap<string, Float32Array>,
  codec: ValueCodec = valueCodec('f32'),
): Generator<EncodedChunk> {
  let views: Float32Array[];
  try {
    views = sliceViews(slices, values);
  } catch (err) {
    throw callError(grpc.status.INVALID_ARGUMENT, errorMessage(err));
  }
  for (const [i, s] of slices.entries())
    yield* chunkTensor(s.name, s.start, views[i], CHUNK_BYTES, codec);
}

/** The codec a push's header names for its gradient; INVALID_ARGUMENT for an unknown one. */
export function headerCodec(header: PushHeader): ValueCodec {
  try {
    return valueCodec(header.codec ?? '');
  } catch (err) {
    throw callError(grpc.status.INVALID_ARGUMENT, errorMessage(err));
  }
}

/** A push's messages: the header, then the chunks of each slice of `grads`, in its codec. */
export function* pushMessages(
  header: PushHeader,
  slices: readonly Slice[],
  grads: ReadonlyMap<string, Float32Array>,
): Generator<PushMessage> {
  const codec = headerCodec(header);
  yield { header };
  for (const chunk of sliceChunks(slices, grads, codec)) yield { chunk };
}

/** Where a pulled chunk goes: the part of the caller's full tensor that its slice covers. */
export function pullTargets(slices: readonly Slice[], into: Map<string, Float32Array>) {
  return (name: string, offset: number): ChunkTarget | undefined => {
    const s = slices.find(
      (x) => x.name === name && offset >= x.start && offset < x.start + x.length,
    );
    const full = s && into.get(name);
    if (!s || !full || full.length < s.start + s.length) return undefined;
    return { array: full.subarray(s.start, s.start + s.length), start: s.start };
  };
}
