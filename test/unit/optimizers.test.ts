import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../core/errors';
import { parseLrDecay } from '../../core/lr-schedule';
import {
  OPTIMIZER_DEFAULTS,
  resolveOptimizerConfig,
  resolveWireOptimizerConfig,
  validateOptimizerConfig,
  type OptimizerConfig,
} from '../../core/optimizer-config';
import {
  adam,
  createOptimizerState,
  momentum,
  optimizerFor,
  rmsprop,
  sgd,
  type Optimizer,
} from '../../ps/optimizers';

/** Runs `optimizer` over one-element arrays: θ0, then one update per gradient. Returns θ after each. */
function run(
  optimizer: Optimizer,
  cfg: OptimizerConfig,
  theta0: number,
  grads: number[],
): number[] {
  const params = Float32Array.of(theta0);
  const state = createOptimizerState(optimizer, 1);
  return grads.map((g, i) => {
    optimizer.apply(params, Float32Array.of(g), state, { lr: cfg.lr, step: i + 1 }, cfg);
    return params[0];
  });
}

function near(actual: number, expected: number, tolerance = 1e-6): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `expected ${expected} ± ${tolerance}, got ${actual}`,
  );
}

describe('sgd', () => {
  it('takes plain gradient steps', () => {
    const cfg = resolveOptimizerConfig({ kind: 'sgd', lr: 0.1 });
    // θ = 1 - 0.1·0.5 = 0.95; then θ = 0.95 - 0.1·(-1) = 1.05.
    const [t1, t2] = run(sgd, cfg, 1, [0.5, -1]);
    near(t1, 0.95);
    near(t2, 1.05);
  });

  it('adds l2·θ to the gradient before the step', () => {
    const cfg = resolveOptimizerConfig({ kind: 'sgd', lr: 0.1, l2: 0.1 });
    // g' = 0.5 + 0.1·1 = 0.6; θ = 1 - 0.1·0.6 = 0.94.
    near(run(sgd, cfg, 1, [0.5])[0], 0.94);
  });
});

describe('momentum', () => {
  it('accumulates a velocity (no Nesterov)', () => {
    const cfg = resolveOptimizerConfig({ kind: 'momentum', lr: 0.1, momentum: 0.9 });
    // v = 0.9·0 + 1 = 1, θ = 1 - 0.1·1 = 0.9; v = 0.9·1 + 1 = 1.9, θ = 0.9 - 0.19 = 0.71.
    const [t1, t2] = run(momentum, cfg, 1, [1, 1]);
    near(t1, 0.9);
    near(t2, 0.71);
  });

  it('applies l2 through the velocity', () => {
    const cfg = resolveOptimizerConfig({ kind: 'momentum', lr: 0.1, momentum: 0.9, l2: 0.5 });
    // g' = 1 + 0.5·2 = 2, v = 2, θ = 2 - 0.1·2 = 1.8.
    near(run(momentum, cfg, 2, [1])[0], 1.8);
  });
});

describe('adam', () => {
  const cfg = resolveOptimizerConfig({ kind: 'adam', lr: 0.1 });

  it('is bias-corrected from the first step', () => {
    // t=1, g=0.5: m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025,
    // m̂ = 0.05/(1-0.9) = 0.5, v̂ = 0.00025/(1-0.999) = 0.25, √v̂ = 0.5,
    // θ = 1 - 0.1·0.5/(0.5 + 1e-8) = 0.900000002.
    // t=2, g=-1: m = 0.9·0.05 - 0.1 = -0.055, v = 0.999·0.00025 + 0.001 = 0.00124975,
    // m̂ = -0.055/0.19 = -0.2894737, v̂ = 0.00124975/0.001999 = 0.6251876, √v̂ = 0.7906881,
    // θ = 0.9 + 0.1·0.2894737/0.7906881 = 0.9 + 0.0366104 = 0.9366104.
    const [t1, t2] = run(adam, cfg, 1, [0.5, -1]);
    near(t1, 0.9);
    near(t2, 0.9366104);
  });

  it('moves by lr per step under a constant gradient', () => {
    // With g constant, m̂ = g and v̂ = g² at every t, so each step is lr·g/|g| = 0.1.
    const thetas = run(adam, cfg, 1, [0.5, 0.5, 0.5]);
    [0.9, 0.8, 0.7].forEach((expected, i) => near(thetas[i], expected, 1e-5));
  });

  it('keeps its moments in the state arrays', () => {
    const params = Float32Array.of(1);
    const [m, v] = createOptimizerState(adam, 1);
    adam.apply(params, Float32Array.of(0.5), [m, v], { lr: 0.1, step: 1 }, cfg);
    near(m[0], 0.05);
    near(v[0], 0.00025, 1e-9);
  });
});

describe('rmsprop', () => {
  it('divides by the root of the running mean square', () => {
    const cfg = resolveOptimizerConfig({ kind: 'rmsprop', lr: 0.01, rho: 0.9, epsilon: 1e-8 });
    // ms = 0.1·4 = 0.4, θ = 1 - 0.01·2/√0.4 = 1 - 0.02/0.6324555 = 0.9683772;
    // ms = 0.9·0.4 + 0.4 = 0.76, θ = 0.9683772 - 0.02/0.8717798 = 0.9454357.
    const [t1, t2] = run(rmsprop, cfg, 1, [2, 2]);
    near(t1, 0.9683772);
    near(t2, 0.9454357);
  });
});

describe('optimizer state', () => {
  it('round-trips: a copy of (params, state) continues to the same bits', () => {
    for (const optimizer of [adam, sgd, momentum, rmsprop]) {
      const cfg = resolveOptimizerConfig({ kind: optimizer.kind, lr: 0.05, l2: 0.01 });
      const grads = [0.3, -1.2, 0.7, 2.5, -0.1].map((g) => Float32Array.of(g, -g, g / 3));
      const params = Float32Array.of(0.5, -0.25, 1);
      const state = createOptimizerState(optimizer, 3);
      optimizer.apply(params, grads[0], state, { lr: cfg.lr, step: 1 }, cfg);
      // The checkpoint: copies, as a CheckpointStore would write and read them back.
      const params2 = params.slice();
      const state2 = state.map((s) => s.slice());
      for (let t = 2; t <= grads.length; t++) {
        optimizer.apply(params, grads[t - 1], state, { lr: cfg.lr, step: t }, cfg);
        optimizer.apply(params2, grads[t - 1], state2, { lr: cfg.lr, step: t }, cfg);
      }
      assert.deepEqual(params2, params, optimizer.kind);
      assert.deepEqual(state2, state, optimizer.kind);
    }
  });

  it('is per element, so splitting a slice does not change the result', () => {
    const cfg = resolveOptimizerConfig({ kind: 'adam', lr: 0.01 });
    const whole = Float32Array.of(1, 2, 3, 4);
    const wholeState = createOptimizerState(adam, 4);
    const halves = [Float32Array.of(1, 2), Float32Array.of(3, 4)];
    const halfStates = [createOptimizerState(adam, 2), createOptimizerState(adam, 2)];
    const grad = Float32Array.of(0.1, -0.2, 0.3, -0.4);
    adam.apply(whole, grad, wholeState, { lr: 0.01, step: 1 }, cfg);
    halves.forEach((h, i) =>
      adam.apply(h, grad.subarray(2 * i, 2 * i + 2), halfStates[i], { lr: 0.01, step: 1 }, cfg),
    );
    assert.deepEqual(whole, Float32Array.of(...halves[0], ...halves[1]));
  });

  it('optimizerFor knows the four kinds and refuses others', () => {
    for (const kind of ['adam', 'sgd', 'momentum', 'rmsprop']) {
      assert.equal(optimizerFor(kind).kind, kind);
    }
    assert.throws(() => optimizerFor('adagrad'), InvalidArgumentError);
  });
});

describe('learning-rate decay', () => {
  it('inverse:k is η0/(1 + k·epoch)', () => {
    const lr = parseLrDecay('inverse:0.5', 0.1);
    near(lr(0), 0.1, 1e-12); // 0.1/(1 + 0)
    near(lr(2), 0.05, 1e-12); // 0.1/(1 + 0.5·2) = 0.1/2
    near(lr(6), 0.025, 1e-12); // 0.1/(1 + 3)
  });

  it('step:γ:n multiplies by γ every n epochs', () => {
    const lr = parseLrDecay('step:0.5:2', 0.1);
    // epochs 0,1 → 0.1; 2,3 → 0.05; 4 → 0.025.
    assert.deepEqual([0, 1, 2, 3, 4].map(lr), [0.1, 0.1, 0.05, 0.05, 0.025]);
  });

  it('exp:γ is η0·γ^epoch', () => {
    const lr = parseLrDecay('exp:0.9', 0.1);
    near(lr(1), 0.09, 1e-12); // 0.1·0.9
    near(lr(2), 0.081, 1e-12); // 0.1·0.81
  });

  it('"" is constant', () => {
    assert.equal(parseLrDecay('', 0.3)(10), 0.3);
  });
});

describe('resolveOptimizerConfig', () => {
  it('fills every unset field with its default', () => {
    assert.deepEqual(resolveOptimizerConfig({}), { ...OPTIMIZER_DEFAULTS });
    assert.deepEqual(resolveOptimizerConfig({ kind: 'sgd', lr: 0.5 }), {
      ...OPTIMIZER_DEFAULTS,
      kind: 'sgd',
      lr: 0.5,
    });
  });

  it('keeps an explicit 0 (momentum 0 is a value, not "unset")', () => {
    assert.equal(resolveOptimizerConfig({ kind: 'momentum', momentum: 0 }).momentum, 0);
  });

  const bad: Array<[Partial<OptimizerConfig>, RegExp]> = [
    [{ kind: 'adagrad' }, /kind "adagrad"/],
    [{ lr: 0 }, /lr must be/],
    [{ lr: -1 }, /lr must be/],
    [{ lr: Number.NaN }, /lr must be/],
    [{ lr: Number.POSITIVE_INFINITY }, /lr must be/],
    [{ beta1: 1 }, /beta1/],
    [{ beta2: -0.1 }, /beta2/],
    [{ epsilon: 0 }, /epsilon/],
    [{ l2: -1e-4 }, /l2/],
    [{ momentum: 1.5 }, /momentum/],
    [{ rho: 1 }, /rho/],
    [{ lr_decay: 'cosine:3' }, /cosine:3/],
    [{ lr_decay: 'step:0.5:0' }, /n must be a positive integer/],
  ];
  for (const [cfg, message] of bad) {
    it(`refuses ${JSON.stringify(cfg)}`, () => {
      assert.throws(
        () => resolveOptimizerConfig(cfg),
        (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message),
      );
    });
  }

  it('validates a received (wire) config as-is: proto3 zeros are not defaults', () => {
    const wire: OptimizerConfig = { ...OPTIMIZER_DEFAULTS, epsilon: 0 };
    assert.throws(() => validateOptimizerConfig(wire), /epsilon/);
  });
});

describe('resolveWireOptimizerConfig', () => {
  it('reads proto3 zeros and empty strings as unset', () => {
    const wire = {
      kind: 'momentum',
      lr: 0.05,
      beta1: 0,
      beta2: 0,
      epsilon: 0,
      momentum: 0,
      rho: 0,
      l2: 0,
      lr_decay: '',
    };
    assert.deepEqual(resolveWireOptimizerConfig(wire), {
      ...OPTIMIZER_DEFAULTS,
      kind: 'momentum',
      lr: 0.05,
    });
    assert.deepEqual(resolveWireOptimizerConfig({ kind: '', lr: 0 }), { ...OPTIMIZER_DEFAULTS });
    assert.deepEqual(resolveWireOptimizerConfig(null), { ...OPTIMIZER_DEFAULTS });
  });

  it('parses numbers sent as strings and still validates', () => {
    assert.equal(resolveWireOptimizerConfig({ lr: '0.25', l2: '1e-4' }).lr, 0.25);
    assert.throws(() => resolveWireOptimizerConfig({ lr: 'fast' }), /lr must be/);
    assert.throws(() => resolveWireOptimizerConfig({ kind: 'adagrad' }), /kind "adagrad"/);
  });
});
