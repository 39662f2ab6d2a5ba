import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFloat32 } from '../../core/tensor-codec';
import { SliceAssembler, SliceBufferPool } from '../../ps/slice-assembler';

const slices = [
  { name: 'w', start: 0, length: 4 },
  { name: 'b', start: 0, length: 2 },
];

function chunk(name: string, offset: number, ...values: number[]) {
  return { name, offset, data: Buffer.from(encodeFloat32(Float32Array.from(values))) };
}

describe('SliceBufferPool', () => {
  it('hands back the buffers it was given, shaped like the slices', () => {
    const pool = new SliceBufferPool(slices);
    const first = pool.take();
    assert.deepEqual(
      first.map((b) => b.length),
      [4, 2],
    );
    pool.give(first);
    assert.equal(pool.take(), first);
    assert.notEqual(pool.take(), first);
  });

  it('keeps no spare set larger than its byte budget', () => {
    const pool = new SliceBufferPool(slices, 8);
    const set = pool.take();
    pool.give(set);
    assert.notEqual(pool.take(), set);
  });

  it('an assembler on reused buffers sees none of their old values', () => {
    const pool = new SliceBufferPool(slices);
    const stale = pool.take();
    for (const b of stale) b.fill(99);
    pool.give(stale);
    const a = new SliceAssembler(slices, 'gradient', pool.take());
    a.add(chunk('w', 0, 1, 2, 3, 4));
    a.add(chunk('b', 0, 5, 6));
    assert.deepEqual(a.finish(), [Float32Array.of(1, 2, 3, 4), Float32Array.of(5, 6)]);
    const partial = new SliceAssembler(slices, 'gradient', stale);
    partial.add(chunk('w', 0, 1, 2));
    partial.add(chunk('b', 0, 5, 6));
    assert.throws(() => partial.finish(), /elements from 2 are missing/);
  });

  it('refuses buffers that do not match the slices', () => {
    assert.throws(() => new SliceAssembler(slices, 'gradient', [new Float32Array(4)]));
  });
});
