import type { TensorChunk } from '../proto/gen/caviar/v1/TensorChunk';
import type { TensorChunk__Output } from '../proto/gen/caviar/v1/TensorChunk';
import { CHUNK_BYTES } from './rpc';
import { InvalidArgumentError } from './errors';
import { valueCodec, type ValueCodec } from './value-codec';

const F32 = valueCodec('f32');

/** The raw little-endian float32 bytes of `values`, sharing memory where the platform allows. */
export function encodeFloat32(values: Float32Array): Buffer {
  return F32.encode(values);
}

/** Copies little-endian float32 bytes into a fresh, aligned Float32Array. */
export function decodeFloat32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(F32.valueCount(bytes));
  F32.decodeInto(bytes, out, 0);
  return out;
}

/** A chunk as this side encoded it: its data always bytes. */
export type EncodedChunk = TensorChunk & { data: Buffer };

/**
 * Splits the element range [start, start + values.length) of tensor `name` into chunks of at most
 * `chunkBytes` bytes, each value encoded by `codec`. `values` holds exactly that range.
 */
export function* chunkTensor(
  name: string,
  start: number,
  values: Float32Array,
  chunkBytes = CHUNK_BYTES,
  codec: ValueCodec = F32,
): Generator<EncodedChunk> {
  const perChunk = Math.max(1, Math.floor(chunkBytes / codec.maxBytesPerValue));
  if (values.length === 0) {
    yield { name, offset: start, data: codec.encode(values) };
    return;
  }
  for (let i = 0; i < values.length; i += perChunk) {
    const piece = values.subarray(i, Math.min(values.length, i + perChunk));
    yield { name, offset: start + i, data: codec.encode(piece) };
  }
}

/** Where a chunk's values go: the destination array and the element offset inside it. */
export interface ChunkTarget {
  array: Float32Array;
  /** Element index in the tensor at which `array` begins. */
  start: number;
}

/**
 * Writes a received chunk (its values encoded by `codec`) into its destination, refusing chunks
 * that name an unknown tensor or fall outside the destination range. `resolve` picks the
 * destination for (name, offset). Returns how many elements were written.
 *
 * The values go straight into the destination (no temporary array): this runs for every chunk
 * of every pull and push, and large short-lived buffers are what the GC pays for.
 */
export function writeChunk(
  chunk: TensorChunk__Output,
  resolve: (name: string, offset: number) => ChunkTarget | undefined,
  codec: ValueCodec = F32,
): number {
  const count = codec.valueCount(chunk.data);
  const target = resolve(chunk.name, chunk.offset);
  if (!target) throw new InvalidArgumentError(`unknown tensor slice ${chunk.name}@${chunk.offset}`);
  const at = chunk.offset - target.start;
  if (at < 0 || at + count > target.array.length) {
    throw new InvalidArgumentError(
      `chunk ${chunk.name}[${chunk.offset}, ${chunk.offset + count}) lies outside its slice ` +
        `[${target.start}, ${target.start + target.array.length})`,
    );
  }
  codec.decodeInto(chunk.data, target.array, at);
  return count;
}

/**
 * Groups `chunks` into lists of at most `limitBytes` of data each (a chunk larger than that
 * alone), in order: the messages of a session stream carry several small tensors' chunks in one
 * message, since each message costs both ends more CPU than its bytes do. Always yields at least
 * one list, empty when there are no chunks.
 */
export function* packChunks(
  chunks: Iterable<EncodedChunk>,
  limitBytes = CHUNK_BYTES,
): Generator<EncodedChunk[]> {
  let pack: EncodedChunk[] = [];
  let bytes = 0;
  let yielded = false;
  for (const chunk of chunks) {
    if (pack.length > 0 && bytes + chunk.data.byteLength > limitBytes) {
      yield pack;
      yielded = true;
      pack = [];
      bytes = 0;
    }
    pack.push(chunk);
    bytes += chunk.data.byteLength;
  }
  if (pack.length > 0 || !yielded) yield pack;
}
