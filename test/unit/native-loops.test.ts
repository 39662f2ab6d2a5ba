import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { NATIVE_ADDON_ENV, loadNativeAddon, nativeAddonAvailable } from '../../core/native/addon';
import { adamLoop } from '../../ps/optimizers';
import { seededUniform } from '../../core/seeded-random';

const skip = nativeAddonAvailable()
  ? false
  : 'the native addon is not built (npm run build:native)';

/** Values over several orders of magnitude and both signs, as gradients and Adam state hold. */
function randomArray(n: number, next: () => number, scale: number, positive = false): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const magnitude = scale * 10 ** (4 * next() - 3);
    return positive || next() < 0.5 ? magnitude : -magnitude;
  });
}

describe('the native optimizer loops', { skip }, () => {
  it('Adam gives bit-identical parameters and state to the JS loop, over many steps', () => {
    const native = loadNativeAddon();
    const next = seededUniform(7);
    for (const [n, l2] of [
      [1, 0],
      [1000, 0],
      [4099, 1e-3],
    ] as const) {
      const params = randomArray(n, next, 1);
      const m = new Float32Array(n);
      const v = new Float32Array(n);
      const js = { params: params.slice(), m: m.slice(), v: v.slice() };
      for (let step = 1; step <= 20; step++) {
        const grad = randomArray(n, next, 0.1);
        const lr = 10 ** (-4 + 3 * next());
        const stepSize = lr / (1 - 0.9 ** step);
        const inverseCorrection2 = 1 / (1 - 0.999 ** step);
        native.adam(params, grad, m, v, stepSize, inverseCorrection2, 0.9, 0.999, 1e-7, l2);
        adamLoop(js.params, grad, js.m, js.v, stepSize, inverseCorrection2, 0.9, 0.999, 1e-7, l2);
      }
      assert.deepEqual(params, js.params, `parameters, n = ${n}`);
      assert.deepEqual(m, js.m, `first moments, n = ${n}`);
      assert.deepEqual(v, js.v, `second moments, n = ${n}`);
    }
  });

  it('refuses arrays shorter than the parameters instead of reading past them', () => {
    const native = loadNativeAddon();
    const long = new Float32Array(8);
    const short = new Float32Array(4);
    assert.throws(
      () => native.adam(long, short, long.slice(), long.slice(), 1, 1, 0.9, 0.999, 1e-7, 0),
      /grad holds 4 floats, needs 8/,
    );
    assert.throws(() => native.firstNonFinite(short, 2, 3), /values holds 4 floats, needs 5/);
  });

  it('finds the first non-finite value in a range, as the JS scan does', () => {
    const native = loadNativeAddon();
    const values = new Float32Array(1000).fill(0.5);
    assert.equal(native.firstNonFinite(values, 0, 1000), -1);
    values[700] = Infinity;
    values[900] = NaN;
    assert.equal(native.firstNonFinite(values, 0, 1000), 700);
    assert.equal(native.firstNonFinite(values, 701, 299), 900);
    assert.equal(native.firstNonFinite(values, 0, 700), -1);
    values[3] = -Infinity;
    assert.equal(native.firstNonFinite(values, 0, 10), 3);
  });
});

describe('a shard without the native addon', () => {
  it('says it runs the JS loops, and refuses a non-finite gradient as the native scan does', () => {
    // A fresh process: a shard decides once, at its first use, which loops it runs.
    const ps = path.join(__dirname, '../../ps');
    const script = `
      const { loopsInUse } = require(${JSON.stringify(path.join(ps, 'native-loops'))});
      const { SliceAssembler } = require(${JSON.stringify(path.join(ps, 'slice-assembler'))});
      const assembler = new SliceAssembler([{ name: 'w', start: 10, length: 6 }], 'gradient');
      const data = Buffer.from(Float32Array.of(1, 2, 3, -Infinity, NaN, 6).buffer);
      let refusal = '';
      try { assembler.add({ name: 'w', offset: 10, data }); } catch (err) { refusal = err.message; }
      console.log(JSON.stringify({ ...loopsInUse(), refusal }));`;
    const run = (env: NodeJS.ProcessEnv) =>
      JSON.parse(execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8' })) as {
        loops: string;
        why?: string;
        refusal: string;
      };
    const hidden = run({ ...process.env, [NATIVE_ADDON_ENV]: '/nonexistent/caviar_native.node' });
    assert.equal(hidden.loops, 'js');
    assert.match(hidden.why ?? '', /native addon is not built/);
    const expected = 'gradient for tensor w has a non-finite value (-Infinity) at element 13';
    assert.equal(hidden.refusal, expected);
    if (nativeAddonAvailable()) {
      const native = run(process.env);
      assert.equal(native.loops, 'native');
      assert.equal(native.refusal, expected);
    }
  });
});
