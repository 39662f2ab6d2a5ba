import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError } from '../../core/errors';
import { resolveTrialSpec } from '../../core/trial-spec';
import {
  applyHyper,
  parseSweepSpec,
  sampleTrials,
  type SearchDomain,
  type SearchSpace,
} from '../../core/sweep';

/** Kolmogorov-Smirnov statistic of samples against U(0, 1). */
function ksUniform(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  let d = 0;
  sorted.forEach((x, i) => {
    d = Math.max(d, (i + 1) / n - x, x - i / n);
  });
  return d;
}

function values(domain: SearchDomain, count: number, seed = 1): number[] {
  return sampleTrials({ x: domain }, count, seed).map((h) => h.x as number);
}

const N = 4_000;
// The KS critical value at alpha = 0.001 is 1.95 / sqrt(n): about 0.031 for 4,000 samples.
const KS_CRITICAL = 1.95 / Math.sqrt(N);

describe('sampleTrials: distributions', () => {
  it('log_uniform is uniform in the exponent, not in the value', () => {
    const [low, high] = [1e-4, 1e-1];
    const xs = values({ kind: 'log_uniform', low, high }, N);
    assert.ok(xs.every((x) => x >= low && x <= high));
    const exponents = xs.map(
      (x) => (Math.log(x) - Math.log(low)) / (Math.log(high) - Math.log(low)),
    );
    const d = ksUniform(exponents);
    assert.ok(d < KS_CRITICAL, `KS distance of the exponent ${d.toFixed(4)} >= ${KS_CRITICAL}`);
    // The same values are far from uniform on the linear scale: the test can tell them apart.
    assert.ok(ksUniform(xs.map((x) => (x - low) / (high - low))) > 0.5);
    // Each decade gets about a third of the draws.
    for (const [a, b] of [
      [1e-4, 1e-3],
      [1e-3, 1e-2],
      [1e-2, 1e-1],
    ]) {
      const share = xs.filter((x) => x >= a && x < b).length / N;
      assert.ok(Math.abs(share - 1 / 3) < 0.03, `decade [${a}, ${b}) got ${share}`);
    }
  });

  it('uniform is uniform over its range', () => {
    const xs = values({ kind: 'uniform', low: -2, high: 6 }, N);
    assert.ok(ksUniform(xs.map((x) => (x + 2) / 8)) < KS_CRITICAL);
  });

  it('int gives every integer in [low, high], each about equally often', () => {
    const xs = values({ kind: 'int', low: 3, high: 7 }, N);
    const counts = new Map<number, number>();
    for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), [3, 4, 5, 6, 7]);
    for (const c of counts.values()) assert.ok(Math.abs(c / N - 0.2) < 0.03);
  });

  it('pow2 gives powers of two in range, the exponent uniform', () => {
    const xs = values({ kind: 'pow2', low: 16, high: 256 }, N);
    const counts = new Map<number, number>();
    for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
    assert.deepEqual(
      [...counts.keys()].sort((a, b) => a - b),
      [16, 32, 64, 128, 256],
    );
    for (const c of counts.values()) assert.ok(Math.abs(c / N - 0.2) < 0.03);
    assert.deepEqual(new Set(values({ kind: 'pow2', low: 20, high: 100 }, 200)), new Set([32, 64]));
  });

  it('int_log favours small integers by the log rule and reaches both ends', () => {
    const xs = values({ kind: 'int_log', low: 1, high: 100 }, N);
    assert.ok(xs.includes(1) && xs.includes(100));
    const small = xs.filter((x) => x <= 10).length / N;
    // P(x <= 10) = log(10.5 / 0.5) / log(100.5 / 0.5) under the rounding rule: about 0.574.
    assert.ok(Math.abs(small - Math.log(21) / Math.log(201)) < 0.03, `share <= 10: ${small}`);
  });

  it('every range kind stays in range, integers where it promises them', () => {
    const domain = fc.oneof(
      fc
        .tuple(
          fc.double({ min: -1e6, max: 1e6, noNaN: true }),
          fc.double({ min: 1e-6, max: 1e6, noNaN: true }),
        )
        .map(([low, w]): SearchDomain => ({ kind: 'uniform', low, high: low + w })),
      fc
        .tuple(
          fc.double({ min: 1e-9, max: 1e3, noNaN: true }),
          fc.double({ min: 1.001, max: 1e6, noNaN: true }),
        )
        .map(([low, r]): SearchDomain => ({ kind: 'log_uniform', low, high: low * r })),
      fc
        .tuple(fc.integer({ min: -1000, max: 1000 }), fc.nat(1000))
        .map(([low, w]): SearchDomain => ({ kind: 'int', low, high: low + w })),
      fc
        .tuple(fc.integer({ min: 1, max: 1000 }), fc.nat(100_000))
        .map(([low, w]): SearchDomain => ({ kind: 'int_log', low, high: low + w })),
      fc
        .tuple(
          fc.integer({ min: 1, max: 16 }),
          fc.double({ min: 1, max: 1.99, noNaN: true }),
          fc.nat(6),
        )
        .map(([e, f, w]): SearchDomain => ({ kind: 'pow2', low: 2 ** e / f, high: 2 ** (e + w) })),
    );
    fc.assert(
      fc.property(domain, fc.integer({ min: 0, max: 1_000_000 }), (d, seed) => {
        for (const x of values(d, 20, seed)) {
          if (d.kind === 'choice') continue;
          assert.ok(x >= d.low && x <= d.high, `${x} outside [${d.low}, ${d.high}]`);
          if (d.kind !== 'uniform' && d.kind !== 'log_uniform') assert.ok(Number.isInteger(x));
          if (d.kind === 'pow2') assert.ok(Number.isInteger(Math.log2(x)));
          if (d.kind === 'uniform') assert.ok(x < d.high);
        }
      }),
    );
  });
});

describe('sampleTrials: determinism', () => {
  const space: SearchSpace = {
    lr: { kind: 'log_uniform', low: 1e-4, high: 1e-1 },
    hidden: { kind: 'choice', values: [[64], [128], [256, 128]] },
    batch: { kind: 'pow2', low: 32, high: 256 },
    l2: { kind: 'uniform', low: 0, high: 0.01 },
  };

  it('the same seed gives the same trials; another seed or round, others', () => {
    assert.deepEqual(sampleTrials(space, 16, 7), sampleTrials(space, 16, 7));
    assert.notDeepEqual(sampleTrials(space, 16, 7), sampleTrials(space, 16, 8));
    assert.notDeepEqual(sampleTrials(space, 16, 7, 0), sampleTrials(space, 16, 7, 1));
    const lrs = sampleTrials(space, 16, 7).map((h) => h.lr);
    assert.equal(new Set(lrs).size, 16, 'trials of one round differ');
  });

  it('trial i does not depend on the count, nor one name on the others', () => {
    assert.deepEqual(sampleTrials(space, 5, 3), sampleTrials(space, 12, 3).slice(0, 5));
    const lrOnly = sampleTrials({ lr: space.lr }, 8, 3).map((h) => h.lr);
    assert.deepEqual(
      sampleTrials(space, 8, 3).map((h) => h.lr),
      lrOnly,
    );
  });

  it('hands out copies of choice values', () => {
    const choice: SearchSpace = { hidden: { kind: 'choice', values: [[64, 32]] } };
    const [first] = sampleTrials(choice, 1, 0);
    (first.hidden as number[]).push(1);
    assert.deepEqual(choice.hidden, { kind: 'choice', values: [[64, 32]] });
    assert.deepEqual(sampleTrials(choice, 1, 0)[0].hidden, [64, 32]);
  });

  it('rejects a bad count', () => {
    assert.throws(() => sampleTrials(space, -1, 0), InvalidArgumentError);
    assert.deepEqual(sampleTrials(space, 0, 0), []);
  });
});

describe('applyHyper', () => {
  const spec = parseSweepSpec(
    `name: s
dataset: { source: csv, path: /data/digits.csv, label_column: digit }
model: { type: mlp, hidden: [128, 64] }
train: { optimizer: momentum, lr: 0.01, batch: 64, epochs: 3, mode: sync, l2: 1.0e-4, seed: 5 }
search:
  lr: { log_uniform: [1.0e-4, 1.0e-1] }
  hidden_units: { pow2: [16, 512] }
  beta1: { uniform: [0.8, 0.95] }
budget: { trials: 4 }
`,
    's.yaml',
  );

  it('overrides the fixed settings and builds a wire TrialSpec the coordinator accepts', () => {
    const hyper = { lr: 0.003, hidden_units: 32, beta1: 0.85 };
    const settings = applyHyper(spec, hyper, 'trial-7');
    assert.deepEqual(settings.hyper, hyper);
    assert.deepEqual(settings.model, { type: 'mlp', hidden: [32, 32] });
    assert.equal(settings.train.lr, 0.003);
    assert.equal(settings.train.batch, 64);
    assert.deepEqual(settings.trialSpec, {
      name: 'trial-7',
      dataset: 'csv:/data/digits.csv',
      label_column: 'digit',
      model: 'mlp:32,32',
      optimizer: {
        kind: 'momentum',
        lr: 0.003,
        beta1: 0.85,
        beta2: 0.999,
        epsilon: 1e-8,
        momentum: 0.9,
        rho: 0.9,
        l2: 1e-4,
        lr_decay: '',
      },
      batch: 64,
      epochs: 3,
      mode: 'sync',
      seed: 5,
      clip_norm: 0,
      augment: '',
      compress: 'none',
      compress_pull: 'none',
      overlap: false,
      init_from: '',
      freeze: '',
      reinit: '',
    });
    const resolved = resolveTrialSpec(settings.trialSpec);
    assert.deepEqual(resolved.model, settings.model);
    assert.equal(resolved.optimizer.lr, 0.003);
  });

  it('builds every sampled trial into a valid trial spec', () => {
    for (const hyper of sampleTrials(spec.search, 50, 11)) {
      const { trialSpec } = applyHyper(spec, hyper);
      assert.doesNotThrow(() => resolveTrialSpec(trialSpec));
    }
  });

  it('takes layers and hidden_units together or alone, filling from the fixed model', () => {
    assert.deepEqual(applyHyper(spec, { layers: 3 }).model, {
      type: 'mlp',
      hidden: [128, 128, 128],
    });
    assert.deepEqual(applyHyper(spec, { layers: 1, hidden_units: 10 }).model, {
      type: 'mlp',
      hidden: [10],
    });
    assert.deepEqual(applyHyper(spec, { hidden: [256, 32] }).trialSpec.model, 'mlp:256,32');
    assert.deepEqual(applyHyper(spec, {}).trialSpec.model, 'mlp:128,64');
  });

  it('searches fine-tuning against re-training: freeze takes a count or layer names, init_from a directory beside the spec', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-sweep-'));
    fs.mkdirSync(path.join(dir, 'pretrained'));
    try {
      const transfer = parseSweepSpec(
        `dataset: { source: mnist }
model: { type: lenet5 }
train: { init_from: pretrained, reinit: dense2 }
search:
  freeze: { choice: [0, 2, "conv0"] }
budget: { trials: 3 }
`,
        'transfer.yaml',
        { baseDir: dir },
      );
      assert.equal(transfer.train.init_from, path.join(dir, 'pretrained'));
      const specs = [0, 2, 'conv0'].map((freeze) => applyHyper(transfer, { freeze }).trialSpec);
      assert.deepEqual(
        specs.map((t) => [t.init_from, t.freeze, t.reinit]),
        ['0', '2', 'conv0'].map((f) => [path.join(dir, 'pretrained'), f, 'dense2']),
      );
      assert.deepEqual(
        specs.map((t) => resolveTrialSpec(t).transfer.freeze.kind),
        ['none', 'first', 'layers'],
      );
      assert.throws(() => applyHyper(transfer, { freeze: 'conv 0' }), /freeze must be a count/);
      assert.throws(() => applyHyper(transfer, { freeze: -1 }), /freeze must be a count/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects names a sweep cannot set and values out of range', () => {
    assert.throws(() => applyHyper(spec, { dropout: 0.5 }), /"dropout" is not a setting/);
    assert.throws(() => applyHyper(spec, { batch: 12.5 }), /batch must be an integer/);
    assert.throws(() => applyHyper(spec, { optimizer: 'adamw' }), /optimizer must be one of/);
    assert.throws(() => applyHyper(spec, { hidden: [64], layers: 2 }), InvalidArgumentError);
  });
});
