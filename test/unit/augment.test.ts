import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkAugmentFits, formatAugment, parseAugment } from '../../core/augment-spec';
import { InvalidArgumentError } from '../../core/errors';
import { loadSplits } from '../../core/datasets';
import { augmentBatch } from '../../worker/augment';
import { createTrialContext, trainingBatch } from '../../worker/trial-context';
import type { ComputeService } from '../../worker/trial-compute';
import type { TrialSpec__Output } from '../../proto/gen/caviar/v1/TrialSpec';

const H = 5;
const W = 6;
/** An asymmetric image, every pixel distinct: pixel (y, x) = 1 + y·W + x. */
const image = Float32Array.from({ length: H * W }, (_, i) => 1 + i);

function batchOf(n: number): Float32Array {
  const out = new Float32Array(n * H * W);
  for (let e = 0; e < n; e++) out.set(image, e * H * W);
  return out;
}

const pixel = (img: Float32Array, y: number, x: number): number =>
  y < 0 || y >= H || x < 0 || x >= W ? 0 : img[y * W + x];

/** The image moved by (dy, dx) whole pixels, zeros coming in. */
function shifted(dy: number, dx: number): Float32Array {
  return Float32Array.from({ length: H * W }, (_, i) =>
    pixel(image, Math.floor(i / W) - dy, (i % W) - dx),
  );
}

const mirror = Float32Array.from({ length: H * W }, (_, i) =>
  pixel(image, Math.floor(i / W), W - 1 - (i % W)),
);

const examples = (batch: Float32Array, n: number) =>
  Array.from({ length: n }, (_, e) => batch.subarray(e * H * W, (e + 1) * H * W));

describe('augmentation', () => {
  it('parses and formats its spec; bad parts are one clear error', () => {
    const a = parseAugment('flip:h, crop:4,rotate:10,color:0.2');
    assert.equal(formatAugment(a), 'flip:h,crop:4,rotate:10,color:0.2');
    assert.equal(formatAugment(parseAugment('none')), '');
    for (const [bad, pattern] of [
      ['flip:x', /flip:h, flip:v or flip:hv/],
      ['crop:1.5', /expected an integer/],
      ['rotate:500', /0\.\.180/],
      ['blur:2', /unknown; expected flip/],
    ] as const)
      assert.throws(
        () => parseAugment(bad),
        (err: unknown) => err instanceof InvalidArgumentError && pattern.test(err.message),
      );
    assert.throws(() => checkAugmentFits(parseAugment('flip:h'), [2]), /needs images/);
    checkAugmentFits(parseAugment('color:0.1'), [2]);
  });

  it('a flipped image equals its mirror exactly, and about half the batch is flipped', () => {
    const n = 40;
    const batch = batchOf(n);
    augmentBatch(batch, n, [H, W, 1], parseAugment('flip:h'), 'trial:1:0:3');
    let flipped = 0;
    for (const ex of examples(batch, n)) {
      const isMirror = ex.every((v, i) => v === mirror[i]);
      assert.ok(isMirror || ex.every((v, i) => v === image[i]), 'the image or its exact mirror');
      if (isMirror) flipped++;
    }
    assert.ok(flipped > 8 && flipped < 32, `${flipped} of ${n} flipped`);
  });

  it('crops stay in bounds: each is the image moved by whole pixels within the padding', () => {
    const n = 30;
    const batch = batchOf(n);
    augmentBatch(batch, n, [H, W, 1], parseAugment('crop:2'), 'trial:1:0:4');
    const moves = new Set<string>();
    for (const ex of examples(batch, n)) {
      let found = '';
      for (let dy = -2; dy <= 2 && !found; dy++)
        for (let dx = -2; dx <= 2 && !found; dx++)
          if (shifted(dy, dx).every((v, i) => v === ex[i])) found = `${dy},${dx}`;
      assert.ok(found, 'a whole-pixel move of at most the padding');
      moves.add(found);
    }
    assert.ok(moves.size > 5, `${moves.size} distinct moves`);
  });

  it('the same batch key gives the same batch; another key another', () => {
    const spec = parseAugment('flip:hv,shift:0.2,rotate:15,shear:5,color:0.3');
    const run = (key: string) => {
      const b = batchOf(8);
      augmentBatch(b, 8, [H, W, 1], spec, key);
      return b;
    };
    assert.deepEqual(run('t:1:2:3'), run('t:1:2:3'));
    assert.notDeepEqual(run('t:1:2:3'), run('t:1:2:4'));
    for (const v of run('t:1:2:5')) assert.ok(Number.isFinite(v));
  });

  it('colour shifts each channel by one amount within its range', () => {
    const rgb = new Float32Array(2 * 2 * 3);
    augmentBatch(rgb, 1, [2, 2, 3], parseAugment('color:0.5'), 'k');
    for (let c = 0; c < 3; c++) {
      const values = [0, 1, 2, 3].map((p) => rgb[p * 3 + c]);
      assert.ok(
        values.every((v) => v === values[0]),
        'one shift per channel',
      );
      assert.ok(Math.abs(values[0]) <= 0.5);
    }
  });

  it('training batches are augmented copies: the data set, validation included, never changes', async () => {
    const spec = {
      dataset: 'mnist',
      label_column: '',
      model: 'mlp:8',
      batch: 16,
      augment: 'flip:h,crop:3,color:0.5',
    } as TrialSpec__Output;
    const compute = { threaded: false, createModel: async () => ({}) } as unknown as ComputeService;
    const noFrozenLayers = () => Promise.reject(new Error('the trial freezes no layer'));
    const context = await createTrialContext('t', spec, ['ps-0'], compute, noFrozenLayers);
    const splits = await loadSplits('mnist');
    const before = [splits.train, splits.validation, splits.test].map((d) =>
      Float32Array.from(d.features),
    );
    const indices = Array.from({ length: 16 }, (_, i) => i);
    const batch = trainingBatch(context, indices, 't:1:0:0');
    const plain = splits.train.features.subarray(0, 16 * 784);
    assert.notDeepEqual(Float32Array.from(batch.features), Float32Array.from(plain));
    [splits.train, splits.validation, splits.test].forEach((d, i) =>
      assert.deepEqual(d.features, before[i], 'a split changed'),
    );
  });
});
