import { InvalidArgumentError } from './errors';

/**
 * How float32 values become bytes in a TensorChunk: whole (`f32`, the default), as 16-bit
 * floats to halve what a push puts on the network (`--compress bf16|fp16`), or only the non-zero
 * ones with their positions (`sparse`, what a top-k push leaves, `--compress topk:RATIO`). bf16
 * keeps float32's exponent range and 8 bits of mantissa; fp16 keeps 11 bits of mantissa but tops
 * out at 65504, and larger magnitudes are clamped there so a gradient stays finite (an infinity or
 * NaN stays what it is, and the shard refuses it as non-finite). Both round to the nearest, ties
 * to even.
 */
export interface ValueCodec {
  /** As a push header names it ("" means f32). */
  readonly name: ValueCodecName;
  /** The most bytes one value takes: how many values a chunk of a given size may carry. */
  readonly maxBytesPerValue: number;
  /** The bytes of `values`; f32 shares their memory where the platform is little-endian. */
  encode(values: Float32Array): Buffer;
  /** How many values `bytes` stands for; INVALID_ARGUMENT for bytes this codec did not write. */
  valueCount(bytes: Uint8Array): number;
  /** Decodes `bytes` (checked by valueCount) into `target` from element `at`. */
  decodeInto(bytes: Uint8Array, target: Float32Array, at: number): void;
}

export const VALUE_CODEC_NAMES = ['f32', 'bf16', 'fp16', 'sparse'] as const;
export type ValueCodecName = (typeof VALUE_CODEC_NAMES)[number];

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** valueCount of a codec whose every value takes `width` bytes. */
function denseCount(name: string, width: number) {
  return (bytes: Uint8Array): number => {
    if (bytes.byteLength % width !== 0)
      throw new InvalidArgumentError(
        `tensor data of ${bytes.byteLength} bytes is not a whole number of ${name} values`,
      );
    return bytes.byteLength / width;
  };
}

const f32: ValueCodec = {
  name: 'f32',
  maxBytesPerValue: 4,
  valueCount: denseCount('float32', 4),
  encode(values) {
    if (LITTLE_ENDIAN) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    const out = Buffer.allocUnsafe(values.length * 4);
    for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
    return out;
  },
  decodeInto(bytes, target, at) {
    if (LITTLE_ENDIAN) {
      const { buffer, byteOffset } = target;
      new Uint8Array(buffer, byteOffset + at * 4, bytes.byteLength).set(bytes);
      return;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < bytes.byteLength / 4; i++) target[at + i] = view.getFloat32(i * 4, true);
  },
};

/** Reads 16-bit little-endian codes out of `bytes`, aligned or not. */
function codesOf(bytes: Uint8Array): Uint16Array {
  const count = bytes.byteLength / 2;
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
    return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  }
  const codes = new Uint16Array(count);
  for (let i = 0; i < count; i++) codes[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
  return codes;
}

/** Writes 16-bit codes as little-endian bytes. */
function bytesOf(codes: Uint16Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(codes.buffer, codes.byteOffset, codes.byteLength);
  const out = Buffer.allocUnsafe(codes.length * 2);
  for (let i = 0; i < codes.length; i++) out.writeUInt16LE(codes[i], i * 2);
  return out;
}

/**
 * A 16-bit codec from its conversions of whole arrays, both ways: each codec's loop calls one
 * conversion only, which V8 inlines (a loop shared through a callback ran bf16 at a third of
 * the speed).
 */
function halfWidth(
  name: ValueCodecName,
  toCodes: (bits: Uint32Array, codes: Uint16Array) => void,
  fromCodes: (codes: Uint16Array, target: Float32Array, at: number) => void,
): ValueCodec {
  return {
    name,
    maxBytesPerValue: 2,
    valueCount: denseCount(name, 2),
    encode(values) {
      const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
      const codes = new Uint16Array(values.length);
      toCodes(bits, codes);
      return bytesOf(codes);
    },
    decodeInto(bytes, target, at) {
      fromCodes(codesOf(bytes), target, at);
    },
  };
}

/** float32 bits to bfloat16: the top half, rounded to nearest even; NaNs stay NaN. */
function bf16Code(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 bits to IEEE half, rounded to nearest even, finite values clamped to ±65504. */
function fp16Code(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7bff;
  if (e <= 0) {
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && half & 1)) half += 1;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1;
  return half >= 0x7c00 ? sign | 0x7bff : sign | half;
}

/** Every half's float value, so decoding is a table look-up per value. */
const HALF_VALUES = (() => {
  const table = new Float32Array(1 << 16);
  for (let h = 0; h < table.length; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) table[h] = sign * m * 2 ** -24;
    else if (e === 0x1f) table[h] = m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else table[h] = sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return table;
})();

const bf16 = halfWidth(
  'bf16',
  (bits, codes) => {
    for (let i = 0; i < bits.length; i++) codes[i] = bf16Code(bits[i]);
  },
  (codes, target, at) => {
    const bits = new Uint32Array(target.buffer, target.byteOffset + at * 4, codes.length);
    for (let i = 0; i < codes.length; i++) bits[i] = codes[i] << 16;
  },
);

const fp16 = halfWidth(
  'fp16',
  (bits, codes) => {
    for (let i = 0; i < bits.length; i++) codes[i] = fp16Code(bits[i]);
  },
  (codes, target, at) => {
    for (let i = 0; i < codes.length; i++) target[at + i] = HALF_VALUES[codes[i]];
  },
);

/**
 * `sparse`: a uint32 count of the values the chunk stands for, the number n of non-zero ones,
 * their n positions (uint32, increasing, relative to the chunk's offset), then their n float32
 * values, all little-endian; every other value is zero. Eight bytes a value kept, against four
 * for every value in f32: a push of top-k gradients at ratio r takes about 2r of the bytes.
 */
const sparse: ValueCodec = {
  name: 'sparse',
  // The worst case, every value non-zero, still fits the chunk it was sized for.
  maxBytesPerValue: 8,
  encode(values) {
    let n = 0;
    for (let i = 0; i < values.length; i++) if (values[i] !== 0) n++;
    const out = Buffer.allocUnsafe(8 + 8 * n);
    out.writeUInt32LE(values.length, 0);
    out.writeUInt32LE(n, 4);
    let k = 0;
    for (let i = 0; i < values.length; i++) {
      if (values[i] === 0) continue;
      out.writeUInt32LE(i, 8 + 4 * k);
      out.writeFloatLE(values[i], 8 + 4 * n + 4 * k);
      k++;
    }
    return out;
  },
  valueCount(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = bytes.byteLength >= 8 ? view.getUint32(4, true) : -1;
    if (n < 0 || bytes.byteLength !== 8 + 8 * n)
      throw new InvalidArgumentError(
        `sparse tensor data of ${bytes.byteLength} bytes does not hold the values it counts`,
      );
    const count = view.getUint32(0, true);
    let previous = -1;
    for (let k = 0; k < n; k++) {
      const at = view.getUint32(8 + 4 * k, true);
      if (at <= previous || at >= count)
        throw new InvalidArgumentError(
          `sparse tensor data: position ${at} is out of order or past its ${count} values`,
        );
      previous = at;
    }
    return count;
  },
  decodeInto(bytes, target, at) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const count = view.getUint32(0, true);
    const n = view.getUint32(4, true);
    target.fill(0, at, at + count);
    for (let k = 0; k < n; k++)
      target[at + view.getUint32(8 + 4 * k, true)] = view.getFloat32(8 + 4 * n + 4 * k, true);
  },
};

const CODECS: Record<ValueCodecName, ValueCodec> = { f32, bf16, fp16, sparse };

/** The codec a push header names; "" is f32. INVALID_ARGUMENT for any other name. */
export function valueCodec(name: string): ValueCodec {
  const codec = CODECS[(name || 'f32') as ValueCodecName];
  if (!codec) {
    throw new InvalidArgumentError(
      `unknown value codec "${name}"; expected ${VALUE_CODEC_NAMES.join(', ')}`,
    );
  }
  return codec;
}

/**
 * The codec values a shard sends back are encoded with (a trial's --compress-pull): f32, bf16
 * or fp16. INVALID_ARGUMENT for sparse (values are dense) or an unknown name.
 */
export function pullValueCodec(name: string): ValueCodec {
  const codec = valueCodec(name);
  if (codec.name === 'sparse')
    throw new InvalidArgumentError('values travel dense: "sparse" is a codec of pushes only');
  return codec;
}
