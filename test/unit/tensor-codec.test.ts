import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../core/errors';
import { chunkTensor, decodeFloat32, encodeFloat32, writeChunk } from '../../core/tensor-codec';
import type { TensorChunk, TensorChunk__Output } from '../../proto/gen/caviar/v1/TensorChunk';

/** Finite float32 values, ±0 included. */
const values = fc.float32Array({ noNaN: true, noDefaultInfinity: true, maxLength: 300 });

function asReceived(chunk: TensorChunk): TensorChunk__Output {
  // What the wire hands the receiver: a Buffer copy of the bytes, not a view of the sender's array.
  return {
    name: chunk.name ?? '',
    offset: chunk.offset ?? 0,
    data: Buffer.from(chunk.data as Uint8Array),
  };
}

function sameBits(a: Float32Array, b: Float32Array): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++)
    assert.ok(Object.is(a[i], b[i]), `element ${i}: ${a[i]} vs ${b[i]}`);
}

describe('tensor codec', () => {
  it('chunkTensor + writeChunk round-trip any slice for any chunk size', () => {
    fc.assert(
      fc.property(
        values,
        fc.integer({ min: 0, max: 1_000 }),
        fc.integer({ min: 1, max: 200 }),
        (slice, start, chunkBytes) => {
          const out = new Float32Array(slice.length).fill(Number.NaN);
          let written = 0;
          for (const chunk of chunkTensor('w', start, slice, chunkBytes)) {
            assert.ok((chunk.data as Uint8Array).byteLength <= Math.max(4, chunkBytes));
            written += writeChunk(asReceived(chunk), (name) =>
              name === 'w' ? { array: out, start } : undefined,
            );
          }
          assert.equal(written, slice.length);
          sameBits(out, slice);
        },
      ),
    );
  });

  it('encodeFloat32 + decodeFloat32 round-trip bit for bit', () => {
    fc.assert(
      fc.property(values, (v) => {
        sameBits(decodeFloat32(Buffer.from(encodeFloat32(v))), v);
      }),
    );
  });

  it('decodeFloat32 refuses a byte count that is not a multiple of 4', () => {
    const length = fc.integer({ min: 0, max: 64 }).filter((n) => n % 4 !== 0);
    fc.assert(
      fc.property(length, (n) => {
        assert.throws(() => decodeFloat32(new Uint8Array(n)), InvalidArgumentError);
      }),
    );
  });

  it('writeChunk refuses a chunk outside its target or naming an unknown tensor', () => {
    const target = { array: new Float32Array(4), start: 10 };
    const chunk = (offset: number, n: number): TensorChunk__Output => ({
      name: 'w',
      offset,
      data: Buffer.from(encodeFloat32(new Float32Array(n))),
    });
    assert.throws(() => writeChunk(chunk(12, 3), () => target), /outside its slice/);
    assert.throws(() => writeChunk(chunk(9, 1), () => target), /outside its slice/);
    assert.throws(() => writeChunk(chunk(10, 1), () => undefined), /unknown tensor slice/);
  });
});
