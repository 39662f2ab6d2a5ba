import type { TensorChunk } from '../proto/gen/caviar/v1/TensorChunk';
import type { TensorChunk__Output } from '../proto/gen/caviar/v1/TensorChunk';
import { CHUNK_BYTES } from './rpc';
import { InvalidArgumentError } from './errors';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The raw little-endian float32 bytes of `values`, sharing memory where the platform allows. */
export function encodeFloat32(values: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
  return out;
}

/** Copies little-endian float32 bytes into a fresh, aligned Float32Array. */
export function decodeFloat32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) {
    throw new InvalidArgumentError(
      `tensor data of ${bytes.byteLength} bytes is not a whole number of float32 values`,
    );
  }
  const out = new Float32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/**
 * Splits the element range [start, start + values.length) of tensor `name` into chunks of at most
 * `chunkBytes` bytes. `values` holds exactly that range.
 */
export function* chunkTensor(
  name: string,
  start: number,
  values: Float32Array,
  chunkBytes = CHUNK_BYTES,
): Generator<TensorChunk> {
  const perChunk = Math.max(1, Math.floor(chunkBytes / 4));
  if (values.length === 0) {
    yield { name, offset: start, data: Buffer.alloc(0) };
    return;
  }
  for (let i = 0; i < values.length; i += perChunk) {
    const piece = values.subarray(i, Math.min(values.length, i + perChunk));
    yield { name, offset: start + i, data: encodeFloat32(piece) };
  }
}

/** Where a chunk's values go: the destination array and the element offset inside it. */
export interface ChunkTarget {
  array: Float32Array;
  /** Element index in the tensor at which `array` begins. */
  start: number;
}

/**
 * Writes a received chunk into its destination, refusing chunks that name an unknown tensor or
 * fall outside the destination range. `resolve` picks the destination for (name, offset).
 * Returns how many elements were written.
 *
 * The bytes go straight into the destination (one copy, no temporary array): this runs for every
 * chunk of every pull and push, and large short-lived buffers are what the GC pays for.
 */
export function writeChunk(
  chunk: TensorChunk__Output,
  resolve: (name: string, offset: number) => ChunkTarget | undefined,
): number {
  const bytes = chunk.data;
  if (bytes.byteLength % 4 !== 0) {
    throw new InvalidArgumentError(
      `tensor data of ${bytes.byteLength} bytes is not a whole number of float32 values`,
    );
  }
  const count = bytes.byteLength / 4;
  const target = resolve(chunk.name, chunk.offset);
  if (!target) throw new InvalidArgumentError(`unknown tensor slice ${chunk.name}@${chunk.offset}`);
  const at = chunk.offset - target.start;
  if (at < 0 || at + count > target.array.length) {
    throw new InvalidArgumentError(
      `chunk ${chunk.name}[${chunk.offset}, ${chunk.offset + count}) lies outside its slice ` +
        `[${target.start}, ${target.start + target.array.length})`,
    );
  }
  if (LITTLE_ENDIAN) {
    const { buffer, byteOffset } = target.array;
    new Uint8Array(buffer, byteOffset + at * 4, bytes.byteLength).set(bytes);
  } else {
    target.array.set(decodeFloat32(bytes), at);
  }
  return count;
}
