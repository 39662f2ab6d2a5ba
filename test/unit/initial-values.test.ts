import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  drawInitialValues,
  initialParameters,
  initialSlice,
  type ParamInfo,
} from '../../core/model-spec';
import { elementCount } from '../../core/placement';
import { drain } from '../../core/yielding';

const param = fc
  .record({
    rows: fc.integer({ min: 1, max: 40 }),
    cols: fc.integer({ min: 1, max: 40 }),
    init: fc.constantFrom('he_normal', 'glorot_uniform', 'zeros') as fc.Arbitrary<
      ParamInfo['init']
    >,
  })
  .map(({ rows, cols, init }): ParamInfo => ({
    name: 'w',
    shape: [rows, cols],
    init,
    fanIn: rows,
    fanOut: cols,
  }));

test("a slice drawn alone equals that range of the whole tensor's initial values (any start, odd ones too)", () => {
  fc.assert(
    fc.property(param, fc.nat({ max: 2 ** 31 - 1 }), fc.nat(), fc.nat(), (p, seed, a, b) => {
      const n = elementCount(p.shape);
      const start = a % n;
      const length = b % (n - start + 1);
      const whole = initialParameters([p], seed).get('w')!;
      assert.deepEqual(initialSlice(p, seed, start, length), whole.subarray(start, start + length));
    }),
  );
});

test("several ranges drawn in one walk (in any order, small rounds) equal the whole tensor's", () => {
  fc.assert(
    fc.property(
      param,
      fc.nat({ max: 2 ** 31 - 1 }),
      fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 1, max: 7 }),
      (p, seed, cuts, round) => {
        const n = elementCount(p.shape);
        // Disjoint ranges from sorted cut points; every other gap between them is left out.
        const points = [...new Set(cuts.map((c) => c % (n + 1)))].sort((a, b) => a - b);
        const ranges = [];
        for (let i = 0; i + 1 < points.length; i += 2)
          ranges.push({ start: points[i], out: new Float32Array(points[i + 1] - points[i]) });
        drain(drawInitialValues(p, seed, [...ranges].reverse(), round));
        const whole = initialParameters([p], seed).get('w')!;
        for (const { start, out } of ranges)
          assert.deepEqual(out, whole.subarray(start, start + out.length));
      },
    ),
  );
});

test('initial values are not all equal (the generator draws)', () => {
  const p: ParamInfo = { name: 'w', shape: [8, 8], init: 'he_normal', fanIn: 8, fanOut: 8 };
  const values = initialSlice(p, 3);
  assert.ok(new Set(values).size > 60);
});
