import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TopKErrorFeedback } from '../../worker/error-feedback';
import { parseCompression, pushCodecOf, topKRatioOf } from '../../core/compression';
import { seededUniform } from '../../core/seeded-random';
import type { ParamInfo } from '../../core/model-spec';

const tensor = (name: string, n: number, extra: Partial<ParamInfo> = {}): ParamInfo => ({
  name,
  shape: [n],
  init: 'zeros',
  fanIn: n,
  fanOut: n,
  ...extra,
});

function gradient(n: number, seed: number): Float32Array {
  const next = seededUniform(seed);
  return Float32Array.from({ length: n }, () => next() * 2 - 1);
}

describe('top-k with error feedback', () => {
  it('pushes exactly k of each small tensor, the largest magnitudes of gradient plus residual', () => {
    const feedback = new TopKErrorFeedback(0.1, [tensor('w', 1000), tensor('b', 7)]);
    const w = gradient(1000, 1);
    const b = gradient(7, 2);
    const before = Float32Array.from(w);
    feedback.sparsify(
      new Map([
        ['w', w],
        ['b', b],
      ]),
    );
    const sent = [...w.keys()].filter((i) => w[i] !== 0);
    assert.equal(sent.length, 100);
    assert.equal(b.filter((x) => x !== 0).length, 1, 'k = ceil(0.1 * 7)');
    const smallestSent = Math.min(...sent.map((i) => Math.abs(before[i])));
    const largestLeft = Math.max(
      ...[...w.keys()].filter((i) => w[i] === 0).map((i) => Math.abs(before[i])),
    );
    assert.ok(smallestSent >= largestLeft);
    const residual = feedback.residual('w')!;
    for (let i = 0; i < w.length; i++) assert.equal(w[i] + residual[i], before[i]);
  });

  it('over steps, what is pushed plus what is left sums to the true gradients', () => {
    const feedback = new TopKErrorFeedback(0.05, [tensor('w', 500)]);
    const truth = new Float64Array(500);
    const pushed = new Float64Array(500);
    for (let step = 0; step < 40; step++) {
      const g = gradient(500, 100 + step);
      g.forEach((x, i) => (truth[i] += x));
      feedback.sparsify(new Map([['w', g]]));
      g.forEach((x, i) => (pushed[i] += x));
    }
    const residual = feedback.residual('w')!;
    for (let i = 0; i < 500; i++)
      assert.ok(Math.abs(pushed[i] + residual[i] - truth[i]) < 1e-4, `element ${i}`);
    // Left out long enough, an element's residual grows until it is pushed: none starves.
    const everPushed = new Set<number>();
    const starving = new TopKErrorFeedback(0.01, [tensor('w', 300)]);
    for (let step = 0; step < 300; step++) {
      const g = gradient(300, 1000 + step).map((x) => x + 0.5);
      starving.sparsify(new Map([['w', g]]));
      g.forEach((x, i) => x !== 0 && everPushed.add(i));
    }
    assert.equal(everPushed.size, 300);
  });

  it("estimates a large tensor's threshold from a sample: about k kept, the largest ones", () => {
    const n = 200_000;
    const feedback = new TopKErrorFeedback(0.01, [tensor('w', n)]);
    const g = gradient(n, 5);
    const before = Float32Array.from(g);
    feedback.sparsify(new Map([['w', g]]));
    const kept = g.filter((x) => x !== 0).length;
    assert.ok(kept > 0.7 * 2000 && kept < 1.3 * 2000, `${kept} kept of k = 2000`);
    const smallestSent = Math.min(...[...g].filter((x) => x !== 0).map(Math.abs));
    const residual = feedback.residual('w')!;
    for (let i = 0; i < n; i++) {
      assert.equal(g[i] + residual[i], before[i]);
      if (g[i] === 0) assert.ok(Math.abs(before[i]) < smallestSent || before[i] === 0);
    }
  });

  it("leaves BatchNorm's moving statistics whole, sends every tie at the threshold, and ratio 1 sends all", () => {
    const feedback = new TopKErrorFeedback(0.25, [
      tensor('bn/moving_mean', 8, { movingAverage: 0.9 }),
      tensor('w', 8),
    ]);
    const stats = gradient(8, 3);
    const ties = new Float32Array(8).fill(0.5);
    feedback.sparsify(
      new Map([
        ['bn/moving_mean', stats],
        ['w', ties],
      ]),
    );
    assert.equal(stats.filter((x) => x !== 0).length, 8);
    assert.deepEqual([...ties], new Array(8).fill(0.5));
    const all = gradient(8, 4);
    const copy = Float32Array.from(all);
    new TopKErrorFeedback(1, [tensor('w', 8)]).sparsify(new Map([['w', all]]));
    assert.deepEqual(all, copy);
  });

  it('reads topk:RATIO as a compression whose pushes travel sparse', () => {
    assert.equal(parseCompression(' topk:0.010 '), 'topk:0.01');
    assert.equal(topKRatioOf('topk:0.01'), 0.01);
    assert.equal(topKRatioOf('bf16'), undefined);
    assert.deepEqual(['', 'none', 'bf16', 'topk:1'].map(pushCodecOf), ['', '', 'bf16', 'sparse']);
    for (const bad of ['topk:0', 'topk:1.5', 'topk:', 'topk:x', 'zip'])
      assert.throws(() => parseCompression(bad), /compress/, bad);
  });
});
