import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { initialParameters, initialSlice, type ParamInfo } from '../../core/model-spec';
import { elementCount } from '../../core/placement';

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

test('initial values are not all equal (the generator draws)', () => {
  const p: ParamInfo = { name: 'w', shape: [8, 8], init: 'he_normal', fanIn: 8, fanOut: 8 };
  const values = initialSlice(p, 3);
  assert.ok(new Set(values).size > 60);
});
