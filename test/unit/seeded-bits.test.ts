import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { seededBits, xoshiro128StarStar } from '../../core/seeded-random';

describe('seededBits (dropout masks)', () => {
  it('is xoshiro128**: the reference outputs from the state 1, 2, 3, 4', () => {
    const out = xoshiro128StarStar(Uint32Array.of(1, 2, 3, 4), new Uint32Array(5));
    assert.deepEqual([...out], [11520, 0, 5927040, 70819200, 2031721883]);
  });

  it('gives the same words for the same key, other words for another', () => {
    const a = seededBits('dropout:t:1:0:7:dropout3', new Uint32Array(1000));
    const again = seededBits('dropout:t:1:0:7:dropout3', new Uint32Array(1000));
    const other = seededBits('dropout:t:1:0:8:dropout3', new Uint32Array(1000));
    assert.deepEqual(a, again);
    const same = a.filter((w, i) => w === other[i]).length;
    assert.ok(same < 5, `${same} of 1000 words equal`);
  });

  it('is uniform enough for masks: shares below a threshold and neighbours uncorrelated', () => {
    const n = 200_000;
    const words = seededBits('uniformity', new Uint32Array(n));
    for (const rate of [0.1, 0.5, 0.9]) {
      const below = words.filter((w) => w < rate * 2 ** 32).length / n;
      assert.ok(Math.abs(below - rate) < 0.005, `rate ${rate}: ${below}`);
    }
    const u = Array.from(words, (w) => w / 2 ** 32 - 0.5);
    let lag = 0;
    let square = 0;
    for (let i = 0; i < n - 1; i++) {
      lag += u[i] * u[i + 1];
      square += u[i] * u[i];
    }
    assert.ok(Math.abs(lag / square) < 0.01, `lag-1 correlation ${lag / square}`);
  });
});
