import * as grpc from '@grpc/grpc-js';
import type { PushHeader } from '../../proto/gen/caviar/v1/PushHeader';
import type { PushMessage } from '../../proto/gen/caviar/v1/PushMessage';
import type { TensorChunk } from '../../proto/gen/caviar/v1/TensorChunk';
import { sliceViews, type Slice } from '../placement';
import { chunkTensor, type ChunkTarget } from '../tensor-codec';
import { callError } from '../grpc-calls';
import { errorMessage } from '../errors';

/** The chunks of `values` at each slice's range, tensor by tensor. */
export function* sliceChunks(
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

/** A push's messages: the header, then the chunks of each slice of `grads`. */
export function* pushMessages(
  header: PushHeader,
  slices: readonly Slice[],
  grads: ReadonlyMap<string, Float32Array>,
): Generator<PushMessage> {
  yield { header };
  for (const chunk of sliceChunks(slices, grads)) yield { chunk };
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
