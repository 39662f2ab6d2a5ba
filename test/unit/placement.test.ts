import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { elementCount, placeTensors, type Slice, type TensorShape } from '../../core/placement';

const tensorList = fc.uniqueArray(
  fc.record({
    name: fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/),
    shape: fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 3 }),
  }),
  { selector: (t) => t.name, maxLength: 8 },
);
const shardCount = fc.integer({ min: 1, max: 8 });
const threshold = fc.integer({ min: 1, max: 5_000 });

function slicesOf(slices: readonly Slice[], name: string): Slice[] {
  return slices.filter((s) => s.name === name).sort((a, b) => a.start - b.start);
}

describe('placeTensors', () => {
  it('covers every element of every tensor exactly once, on a real shard', () => {
    fc.assert(
      fc.property(tensorList, shardCount, threshold, (tensors, shards, splitThreshold) => {
        const placed = placeTensors(tensors, shards, { splitThreshold });
        for (const t of tensors) {
          let end = 0;
          for (const s of slicesOf(placed, t.name)) {
            assert.equal(s.start, end, `${t.name}: gap or overlap at ${s.start}`);
            assert.ok(Number.isInteger(s.shard) && s.shard >= 0 && s.shard < shards);
            end = s.start + s.length;
          }
          assert.equal(end, elementCount(t.shape), `${t.name}: covers ${end} elements`);
        }
        const names = new Set(tensors.map((t) => t.name));
        assert.ok(placed.every((s) => names.has(s.name)));
      }),
    );
  });

  it('splits a tensor only at row boundaries', () => {
    fc.assert(
      fc.property(tensorList, shardCount, threshold, (tensors, shards, splitThreshold) => {
        const placed = placeTensors(tensors, shards, { splitThreshold });
        for (const t of tensors) {
          const pieces = slicesOf(placed, t.name);
          if (pieces.length < 2) continue;
          const rowSize = elementCount(t.shape) / t.shape[0];
          for (const s of pieces) {
            assert.equal(s.start % rowSize, 0, `${t.name} piece at ${s.start} (row ${rowSize})`);
            assert.equal(s.length % rowSize, 0);
          }
        }
      }),
    );
  });

  it('is deterministic whatever the input order', () => {
    const shuffled = tensorList.chain((tensors) =>
      fc.tuple(fc.constant(tensors), fc.shuffledSubarray(tensors, { minLength: tensors.length })),
    );
    fc.assert(
      fc.property(
        shuffled,
        shardCount,
        threshold,
        ([tensors, reordered], shards, splitThreshold) => {
          const a = placeTensors(tensors, shards, { splitThreshold });
          const b = placeTensors(reordered as TensorShape[], shards, { splitThreshold });
          assert.deepEqual(b, a);
        },
      ),
    );
  });

  it('refuses a shard count that is not a positive integer', () => {
    assert.throws(() => placeTensors([], 0), RangeError);
    assert.throws(() => placeTensors([], 1.5), RangeError);
  });
});
