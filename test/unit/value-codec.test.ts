import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../core/errors';
import { chunkTensor, writeChunk } from '../../core/tensor-codec';
import { valueCodec } from '../../core/value-codec';
import { seededUniform } from '../../core/seeded-random';

const bf16 = valueCodec('bf16');
const fp16 = valueCodec('fp16');

function roundTrip(codec: typeof bf16, values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  codec.decodeInto(codec.encode(values), out, 0);
  return out;
}

/** Values spread over many magnitudes and both signs, as gradients are. */
function gradientLike(n: number, seed: number): Float32Array {
  const next = seededUniform(seed);
  return Float32Array.from({ length: n }, () => (next() - 0.5) * 10 ** (next() * 8 - 6));
}

describe('value codecs', () => {
  it('f32 round-trips bit for bit, sharing no rounding', () => {
    const v = gradientLike(1000, 1);
    assert.deepEqual(roundTrip(valueCodec(''), v), v);
    assert.equal(valueCodec('').name, 'f32');
  });

  it('bf16 halves the bytes and keeps every value within half a unit of its 8-bit mantissa', () => {
    const v = gradientLike(10_000, 2);
    assert.equal(bf16.encode(v).byteLength, v.byteLength / 2);
    const back = roundTrip(bf16, v);
    for (let i = 0; i < v.length; i++)
      assert.ok(Math.abs(back[i] - v[i]) <= Math.abs(v[i]) * 2 ** -8, `${v[i]} -> ${back[i]}`);
    // Exact where bf16 can hold the value; a tie goes to the even neighbour.
    assert.deepEqual(
      roundTrip(bf16, Float32Array.of(1, -2, 0.5, 0, 1 + 2 ** -8)),
      Float32Array.of(1, -2, 0.5, 0, 1),
    );
    assert.deepEqual(
      roundTrip(bf16, Float32Array.of(1 + 3 * 2 ** -8)),
      Float32Array.of(1 + 2 ** -6),
    );
    const odd = roundTrip(bf16, Float32Array.of(NaN, Infinity, -Infinity));
    assert.ok(Number.isNaN(odd[0]));
    assert.deepEqual([odd[1], odd[2]], [Infinity, -Infinity]);
  });

  it('fp16 keeps 11 bits of mantissa, clamps finite values to 65504, and represents every half exactly', () => {
    const v = gradientLike(10_000, 3);
    const back = roundTrip(fp16, v);
    for (let i = 0; i < v.length; i++) {
      const bound = Math.abs(v[i]) >= 2 ** -14 ? Math.abs(v[i]) * 2 ** -11 : 2 ** -25;
      assert.ok(Math.abs(back[i] - v[i]) <= bound, `${v[i]} -> ${back[i]}`);
    }
    assert.deepEqual(
      roundTrip(fp16, Float32Array.of(1e6, -1e6, 65504, 1 + 2 ** -11, 2049, 2 ** -24, 2 ** -26)),
      Float32Array.of(65504, -65504, 65504, 1, 2048, 2 ** -24, 0),
    );
    const odd = roundTrip(fp16, Float32Array.of(NaN, Infinity, -Infinity));
    assert.ok(Number.isNaN(odd[0]));
    assert.deepEqual([odd[1], odd[2]], [Infinity, -Infinity]);
    // Every finite half decodes to a float that encodes back to the same half.
    const codes = new Uint16Array(1 << 16).map((_, h) => h);
    const asFloats = new Float32Array(codes.length);
    fp16.decodeInto(Buffer.from(codes.buffer), asFloats, 0);
    const again = new Uint16Array(fp16.encode(asFloats).buffer.slice(0));
    for (let h = 0; h < codes.length; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      assert.equal(again[h], h, `half 0x${h.toString(16)}`);
    }
  });

  it('chunks of 16-bit values stay within the chunk size and decode from any byte offset', () => {
    const v = gradientLike(1001, 4);
    const out = new Float32Array(v.length);
    let written = 0;
    for (const chunk of chunkTensor('w', 0, v, 400, bf16)) {
      const data = chunk.data as Buffer;
      assert.ok(data.byteLength <= 400);
      // Received messages are views into larger buffers, at odd offsets too.
      const unaligned = Buffer.alloc(data.byteLength + 1).subarray(1);
      unaligned.set(data);
      written += writeChunk(
        { name: 'w', offset: Number(chunk.offset), data: unaligned },
        () => ({ array: out, start: 0 }),
        bf16,
      );
    }
    assert.equal(written, v.length);
    assert.deepEqual(out, roundTrip(bf16, v));
    assert.throws(
      () =>
        writeChunk(
          { name: 'w', offset: 0, data: Buffer.alloc(3) },
          () => ({ array: out, start: 0 }),
          bf16,
        ),
      /not a whole number of bf16 values/,
    );
  });

  it('sparse sends only the non-zero values with their positions, in chunks from any offset, and refuses data it did not write', () => {
    const sparse = valueCodec('sparse');
    const v = new Float32Array(5000);
    for (let i = 0; i < v.length; i += 97) v[i] = (i % 2 ? -1 : 1) * (i + 0.5);
    const kept = v.filter((x) => x !== 0).length;
    assert.equal(sparse.encode(v).byteLength, 8 + 8 * kept);
    const out = new Float32Array(v.length).fill(7);
    let written = 0;
    for (const chunk of chunkTensor('w', 0, v, 4000, sparse)) {
      const data = chunk.data as Buffer;
      assert.ok(data.byteLength <= 4000 + 8);
      const unaligned = Buffer.alloc(data.byteLength + 1).subarray(1);
      unaligned.set(data);
      written += writeChunk(
        { name: 'w', offset: Number(chunk.offset), data: unaligned },
        () => ({ array: out, start: 0 }),
        sparse,
      );
    }
    assert.equal(written, v.length);
    assert.deepEqual(out, v, 'every value left out is written as zero');
    const header = (count: number, positions: number[]) => {
      const b = Buffer.alloc(8 + 8 * positions.length);
      b.writeUInt32LE(count, 0);
      b.writeUInt32LE(positions.length, 4);
      positions.forEach((p, k) => b.writeUInt32LE(p, 8 + 4 * k));
      return b;
    };
    assert.throws(() => sparse.valueCount(header(4, [1, 1])), /out of order/);
    assert.throws(() => sparse.valueCount(header(4, [4])), /past its 4 values/);
    assert.throws(() => sparse.valueCount(Buffer.alloc(12)), /does not hold the values it counts/);
    assert.equal(sparse.valueCount(header(4, [0, 3])), 4);
  });

  it('refuses a codec it does not know', () => {
    assert.throws(() => valueCodec('zip'), InvalidArgumentError);
  });
});
