import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors';
import { resolveOptimizerConfig } from '../../core/optimizer-config';
import { encodeFloat32 } from '../../core/tensor-codec';
import { RefusedInputError } from '../../ps/refusal';
import { SliceAssembler, validateSliceRanges } from '../../ps/slice-assembler';
import { TrialShard, type ConsistencyMode } from '../../ps/trial-shard';

const SGD = resolveOptimizerConfig({ kind: 'sgd', lr: 1 });

function trial(mode: ConsistencyMode, lrDecay = ''): TrialShard {
  const config = { ...SGD, lr_decay: lrDecay };
  return new TrialShard('t', config, mode, [
    { name: 'w', start: 0, length: 2, values: Float32Array.of(0, 0) },
  ]);
}

function chunk(name: string, offset: number, ...values: number[]) {
  return { name, offset, data: Buffer.from(encodeFloat32(Float32Array.from(values))) };
}

const meta = (batch: number, step = 0, step_size = 1, epoch = 0) => ({
  epoch,
  batch,
  step,
  step_size,
});

describe('TrialShard', () => {
  it('folds BatchNorm statistics into moving averages once per batch, the sync step on their mean', () => {
    const slices = () => [
      { name: 'w', start: 0, length: 1, values: Float32Array.of(0) },
      {
        name: 'bn/moving_mean',
        start: 0,
        length: 2,
        values: Float32Array.of(0, 0),
        movingAverage: 0.5,
      },
    ];
    const a = new TrialShard('t', SGD, 'async', slices());
    a.push(meta(0), [Float32Array.of(1), Float32Array.of(4, 8)]);
    assert.equal(a.push(meta(0), [Float32Array.of(1), Float32Array.of(4, 8)]).duplicate, true);
    // θ = 0 - 1·1; m = 0.5·0 + 0.5·(4, 8), and the duplicate changes nothing.
    assert.deepEqual(a.slices[0].values, Float32Array.of(-1));
    assert.deepEqual(a.slices[1].values, Float32Array.of(2, 4));
    const s = new TrialShard('t', SGD, 'sync', slices());
    s.push(meta(0, 0, 2), [Float32Array.of(1), Float32Array.of(2, 0)]);
    s.push(meta(1, 0, 2), [Float32Array.of(1), Float32Array.of(6, 4)]);
    assert.deepEqual(s.slices[1].values, Float32Array.of(2, 1), 'half of the mean (4, 2)');
  });

  it('async: applies each push on arrival with the epoch scheduled lr', () => {
    const t = trial('async', 'inverse:1');
    // epoch 0: lr = 1/(1+0) = 1, θ = 0 - 1·1 = -1; epoch 1: lr = 1/2, θ = -1 - 0.5·1 = -1.5.
    t.push(meta(0, 0, 1, 0), [Float32Array.of(1, 2)]);
    t.push(meta(0, 0, 1, 1), [Float32Array.of(1, 2)]);
    assert.deepEqual(t.slices[0].values, Float32Array.of(-1.5, -3));
    assert.equal(t.version, 2);
    assert.equal(t.batchesApplied, 2);
  });

  it('sync: a complete later step waits for the earlier one, then both apply in order', () => {
    const t = trial('sync');
    t.push(meta(10, 1, 2), [Float32Array.of(4, 4)]);
    t.push(meta(11, 1, 2), [Float32Array.of(2, 2)]);
    assert.equal(t.version, 0, 'step 1 applied before step 0');
    t.push(meta(0, 0, 1), [Float32Array.of(1, 1)]);
    // Step 0: θ = 0 - 1 = -1; step 1: mean (4 + 2)/2 = 3, θ = -1 - 3 = -4.
    assert.deepEqual(t.slices[0].values, Float32Array.of(-4, -4));
    assert.equal(t.version, 2);
    assert.equal(t.batchesApplied, 3);
  });

  it('sync: refuses a stale step and a step_size that disagrees, changing nothing', () => {
    const t = trial('sync');
    t.push(meta(0, 0, 1), [Float32Array.of(1, 1)]);
    assert.throws(() => t.push(meta(1, 0, 1), [Float32Array.of(1, 1)]), FailedPreconditionError);
    t.push(meta(2, 1, 2), [Float32Array.of(1, 1)]);
    assert.throws(() => t.push(meta(3, 1, 3), [Float32Array.of(1, 1)]), /step_size 3 differs/);
    assert.throws(() => t.push(meta(4, 2, 0), [Float32Array.of(1, 1)]), RefusedInputError);
    assert.equal(t.isDuplicate(0, 1), false, 'a refused batch must stay retryable');
    assert.equal(t.version, 1);
    assert.deepEqual(t.slices[0].values, Float32Array.of(-1, -1));
  });

  it("ssp:N counts other workers' updates a push missed, not the pusher's own", () => {
    const t = trial('async');
    t.maxStaleness = 1;
    const g = [Float32Array.of(1, 1)];
    const push = (batch: number, worker: string, version: number) =>
      t.push({ ...meta(batch), worker, version }, g);
    assert.equal(push(0, 'a', 0).staleness, 0);
    // a, overlapping, computed batch 1 from version 0 too: its own batch 0 is not staleness.
    assert.equal(push(1, 'a', 0).staleness, 0);
    assert.equal(t.version, 2);
    // b's values of version 1 miss a's batch 1 only: 1, within the bound.
    assert.equal(push(2, 'b', 1).staleness, 1);
    // b's values of version 0 miss a's two batches: 2 > 1, refused, nothing applied.
    const before = Float32Array.from(t.slices[0].values);
    assert.throws(() => push(3, 'b', 0), FailedPreconditionError);
    assert.deepEqual(t.slices[0].values, before);
    assert.equal(t.version, 3);
    // a's values of version 1 miss b's batch 2 (counted) and its own batch 1 (not): 1, accepted.
    assert.equal(push(4, 'a', 1).staleness, 1);
  });

  it('answers a repeated (epoch, batch) as a duplicate, in either mode', () => {
    for (const mode of ['sync', 'async'] as const) {
      const t = trial(mode);
      assert.equal(t.push(meta(5, 0, 2), [Float32Array.of(1, 1)]).accepted, true);
      assert.deepEqual(t.push(meta(5, 0, 2), [Float32Array.of(1, 1)]), {
        accepted: false,
        duplicate: true,
        // sync: half of a step of 2 is gathered, not applied.
        version: mode === 'sync' ? 0 : 1,
      });
      assert.equal(t.refused.get('duplicate'), 1);
    }
  });
});

describe('SliceAssembler', () => {
  const slices = [
    { name: 'w', start: 0, length: 4 },
    { name: 'w', start: 8, length: 2 },
    { name: 'b', start: 0, length: 0 },
  ];

  it('assembles chunks in any order', () => {
    const a = new SliceAssembler(slices, 'gradient');
    a.add(chunk('w', 8, 5, 6));
    a.add(chunk('w', 2, 3, 4));
    a.add(chunk('w', 0, 1, 2));
    a.add(chunk('b', 0));
    assert.deepEqual(a.finish(), [
      Float32Array.of(1, 2, 3, 4),
      Float32Array.of(5, 6),
      new Float32Array(0),
    ]);
  });

  const refusals: Array<[string, Array<ReturnType<typeof chunk>>, string, RegExp]> = [
    [
      'a gap',
      [chunk('w', 0, 1, 2), chunk('w', 3, 4), chunk('w', 8, 5, 6)],
      'bad_shape',
      /from 2 are missing/,
    ],
    [
      'an overlap',
      [chunk('w', 0, 1, 2, 3), chunk('w', 2, 3, 4), chunk('w', 8, 5, 6)],
      'bad_shape',
      /element 2 sent twice/,
    ],
    ['a missing slice', [chunk('w', 0, 1, 2, 3, 4)], 'bad_shape', /w\[8, 10\): elements from 8/],
    ['an unknown tensor', [chunk('v', 0, 1)], 'bad_shape', /unknown tensor slice v@0/],
    ['a chunk past its slice', [chunk('w', 2, 1, 2, 3)], 'bad_shape', /outside its slice/],
    ['an element between slices', [chunk('w', 5, 1)], 'bad_shape', /unknown tensor slice w@5/],
    [
      'infinity',
      [chunk('w', 0, 1, Number.POSITIVE_INFINITY)],
      'non_finite',
      /tensor w .*Infinity.* element 1/,
    ],
  ];
  for (const [what, chunks, reason, message] of refusals) {
    it(`refuses ${what} (${reason})`, () => {
      const a = new SliceAssembler(slices, 'gradient');
      assert.throws(
        () => {
          for (const c of chunks) a.add(c);
          a.finish();
        },
        (err: unknown) =>
          err instanceof RefusedInputError && err.reason === reason && message.test(err.message),
      );
    });
  }

  it('validateSliceRanges refuses overlapping or malformed slices', () => {
    assert.throws(
      () =>
        validateSliceRanges([
          { name: 'w', start: 0, length: 4 },
          { name: 'w', start: 3, length: 2 },
        ]),
      /overlap/,
    );
    assert.throws(
      () => validateSliceRanges([{ name: '', start: 0, length: 1 }]),
      InvalidArgumentError,
    );
    assert.throws(
      () => validateSliceRanges([{ name: 'w', start: -1, length: 1 }]),
      /bad start or length/,
    );
    validateSliceRanges(slices);
  });
});
