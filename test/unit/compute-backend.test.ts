import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadSplits, type DatasetSplits } from '../../core/datasets';
import { InvalidArgumentError } from '../../core/errors';
import { initialParameters, modelParams, type ModelSpec } from '../../core/model-spec';
import { elementCount } from '../../core/placement';
import type { ComputeBackend } from '../../worker/compute-backend';
import { nativeAddonAvailable } from '../../core/native/addon';
import { selectBackend } from '../../worker/select-backend';
import { relativeError } from '../helpers/numeric';

const TINY: ModelSpec = { type: 'mlp', hidden: [4] };

/**
 * Mean softmax cross-entropy of a one-hidden-layer ReLU MLP in float64, written independently
 * of tfjs, as the reference for finite differences.
 */
function referenceLoss(
  params: Map<string, Float32Array>,
  x: Float32Array,
  y: Int32Array,
  inputs: number,
  hidden: number,
  classes: number,
): number {
  const [w0, b0, w1, b1] = ['dense0/kernel', 'dense0/bias', 'dense1/kernel', 'dense1/bias'].map(
    (n) => params.get(n) as Float32Array,
  );
  let total = 0;
  for (let e = 0; e < y.length; e++) {
    const h = Array.from({ length: hidden }, (_, j) => {
      let s = b0[j];
      for (let i = 0; i < inputs; i++) s += x[e * inputs + i] * w0[i * hidden + j];
      return Math.max(0, s);
    });
    const logits = Array.from({ length: classes }, (_, k) =>
      h.reduce((s, hj, j) => s + hj * w1[j * classes + k], b1[k]),
    );
    const max = Math.max(...logits);
    const logSum = max + Math.log(logits.reduce((s, l) => s + Math.exp(l - max), 0));
    total += logSum - logits[y[e]];
  }
  return total / y.length;
}

let spirals: DatasetSplits;
const backends = new Map<string, ComputeBackend>();
/** Every backend that loads here; blas where its optional addon is built. */
const CHOICES = [
  'cpu',
  'wasm',
  ...(nativeAddonAvailable() ? (['blas'] as const) : []),
  'synthetic',
] as const;

before(async () => {
  spirals = await loadSplits('synthetic:spirals');
  for (const choice of CHOICES) backends.set(choice, await selectBackend(choice));
});

for (const choice of CHOICES) {
  describe(`ComputeBackend contract: ${choice}`, () => {
    const backend = () => backends.get(choice) as ComputeBackend;

    it('returns a gradient for every parameter, of the right length', () => {
      for (const [spec, shape] of [
        [{ type: 'mlp', hidden: [8, 5] }, [2]],
        [{ type: 'lenet5' }, [28, 28, 1]],
      ] as Array<[ModelSpec, number[]]>) {
        const params = modelParams(spec, shape, 3);
        const model = backend().createModel(spec, shape, 3);
        model.setParameters(initialParameters(params, 1));
        const n = 4;
        const features = Float32Array.from({ length: n * elementCount(shape) }, (_, i) =>
          Math.sin(i),
        );
        const { loss, grads } = model.gradients(features, Int32Array.from([0, 1, 2, 1]), n);
        assert.ok(Number.isFinite(loss) && loss > 0);
        assert.deepEqual(
          [...grads.keys()],
          params.map((p) => p.name),
        );
        for (const p of params) {
          const g = grads.get(p.name) as Float32Array;
          assert.equal(g.length, elementCount(p.shape), p.name);
          assert.ok(g.every(Number.isFinite), p.name);
        }
        model.dispose();
      }
    });

    it('evaluates to a finite loss and an accuracy in [0, 1]', () => {
      const model = backend().createModel(TINY, [2], 3);
      model.setParameters(initialParameters(modelParams(TINY, [2], 3), 2));
      const { validation } = spirals;
      const result = model.evaluate(validation.features, validation.labels, validation.count);
      assert.equal(result.examples, validation.count);
      assert.ok(result.accuracy >= 0 && result.accuracy <= 1);
      assert.ok(Number.isFinite(result.loss) && result.loss >= 0);
      model.dispose();
    });

    it('leaks no tensors', () => {
      const start = tf.memory().numTensors;
      const model = backend().createModel({ type: 'mlp', hidden: [16] }, [2], 3);
      const params = initialParameters(modelParams({ type: 'mlp', hidden: [16] }, [2], 3), 3);
      const { train } = spirals;
      const round = () => {
        model.setParameters(params);
        model.gradients(train.features, train.labels, 64);
        model.evaluate(train.features, train.labels, 1_500 > train.count ? train.count : 1_500);
      };
      round();
      const steady = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) round();
      assert.equal(tf.memory().numTensors, steady);
      model.dispose();
      assert.equal(tf.memory().numTensors, start);
    });

    it('rejects parameters of the wrong size and out-of-range labels', () => {
      const model = backend().createModel(TINY, [2], 3);
      const params = initialParameters(modelParams(TINY, [2], 3), 4);
      params.set('dense0/bias', new Float32Array(3));
      assert.throws(() => model.setParameters(params), InvalidArgumentError);
      assert.throws(
        () => model.gradients(new Float32Array(2), Int32Array.from([0]), 2),
        InvalidArgumentError,
      );
      if (choice !== 'synthetic') {
        assert.throws(
          () => model.gradients(new Float32Array(2), Int32Array.from([3]), 1),
          InvalidArgumentError,
        );
      }
      model.dispose();
    });

    it('reduces the loss with a few plain SGD steps on spirals', () => {
      const spec: ModelSpec = { type: 'mlp', hidden: [32] };
      const params = initialParameters(modelParams(spec, [2], 3), 5);
      const model = backend().createModel(spec, [2], 3);
      const { train, validation } = spirals;
      model.setParameters(params);
      const before = model.evaluate(validation.features, validation.labels, validation.count).loss;
      const batch = 100;
      for (let step = 0; step < 60; step++) {
        const start = (step * batch) % (train.count - batch);
        const { grads } = model.gradients(
          train.features.subarray(start * 2),
          train.labels.subarray(start),
          batch,
        );
        for (const [name, g] of grads) {
          const p = params.get(name) as Float32Array;
          for (let i = 0; i < p.length; i++) p[i] -= 0.5 * g[i];
        }
        model.setParameters(params);
      }
      const afterLoss = model.evaluate(
        validation.features,
        validation.labels,
        validation.count,
      ).loss;
      // synthetic only pretends: its loss merely drifts down with the step count.
      if (choice === 'synthetic') assert.ok(afterLoss < before, `loss ${before} -> ${afterLoss}`);
      else assert.ok(afterLoss < before * 0.9, `loss ${before} -> ${afterLoss}`);
      model.dispose();
    });
  });
}

describe('tfjs backends agree', () => {
  it('cpu and wasm give the same gradients (1e-4 relative) on MNIST-shaped input', async () => {
    const spec: ModelSpec = { type: 'mlp', hidden: [32] };
    const mnist = await loadSplits('mnist');
    const params = initialParameters(modelParams(spec, [28, 28, 1], 10), 6);
    const results = ['cpu', 'wasm'].map((b) => {
      const model = (backends.get(b) as ComputeBackend).createModel(spec, [28, 28, 1], 10);
      model.setParameters(params);
      const result = model.gradients(mnist.train.features, mnist.train.labels, 64);
      model.dispose();
      return result;
    });
    assert.ok(Math.abs(results[0].loss - results[1].loss) < 1e-4 * results[0].loss);
    for (const [name, g] of results[0].grads) {
      const err = relativeError(g, results[1].grads.get(name) as Float32Array);
      assert.ok(err < 1e-4, `${name}: ${err}`);
    }
  });

  it("cpu and wasm give the same lenet5 gradients (wasm filter gradients come from caviar's kernel)", async () => {
    const spec: ModelSpec = { type: 'lenet5' };
    const mnist = await loadSplits('mnist');
    const params = initialParameters(modelParams(spec, [28, 28, 1], 10), 8);
    const [cpu, wasm] = ['cpu', 'wasm'].map((b) => {
      const model = (backends.get(b) as ComputeBackend).createModel(spec, [28, 28, 1], 10);
      model.setParameters(params);
      const result = model.gradients(mnist.train.features, mnist.train.labels, 16);
      model.dispose();
      return result;
    });
    for (const [name, g] of cpu.grads) {
      const err = relativeError(g, wasm.grads.get(name) as Float32Array);
      assert.ok(err < 1e-4, `${name}: ${err}`);
    }
  });

  it('wasm conv2d filter gradients match cpu for strides, paddings and odd sizes', () => {
    const cases: Array<[number, 'same' | 'valid', number[], number[]]> = [
      [1, 'same', [2, 9, 9, 3], [3, 3, 3, 4]],
      [2, 'valid', [2, 10, 9, 2], [3, 2, 2, 3]],
      [2, 'same', [1, 7, 8, 1], [4, 3, 1, 2]],
      [3, 'valid', [3, 11, 11, 2], [2, 2, 2, 1]],
    ];
    for (const [stride, pad, xShape, fShape] of cases) {
      const grads = ['cpu', 'wasm'].map((b) => {
        void tf.setBackend(b);
        return tf.tidy(() => {
          const x = tf.tensor4d(
            Float32Array.from({ length: elementCount(xShape) }, (_, i) => Math.sin(i)),
            xShape as [number, number, number, number],
          );
          const f = tf.tensor4d(
            Float32Array.from({ length: elementCount(fShape) }, (_, i) => Math.cos(i)),
            fShape as [number, number, number, number],
          );
          const g = tf.grad((w) => tf.sum(tf.square(tf.conv2d(x, w as tf.Tensor4D, stride, pad))))(
            f,
          );
          return new Float32Array(g.dataSync());
        });
      });
      const err = relativeError(grads[0], grads[1]);
      assert.ok(err < 1e-5, `stride ${stride} ${pad} [${xShape}] [${fShape}]: ${err}`);
    }
  });

  for (const choice of ['cpu', 'wasm']) {
    it(`${choice} matches central finite differences of a float64 reference`, () => {
      const params = initialParameters(modelParams(TINY, [2], 3), 7);
      const { train } = spirals;
      const n = 16;
      const x = train.features.subarray(0, n * 2);
      const y = train.labels.subarray(0, n);
      const model = (backends.get(choice) as ComputeBackend).createModel(TINY, [2], 3);
      model.setParameters(params);
      const { loss, grads } = model.gradients(x, y, n);
      model.dispose();
      assert.ok(Math.abs(loss - referenceLoss(params, x, y, 2, 4, 3)) < 1e-5);
      for (const [name, index] of [
        ['dense0/kernel', 5],
        ['dense0/bias', 1],
        ['dense1/kernel', 7],
        ['dense1/bias', 2],
      ] as const) {
        const p = params.get(name) as Float32Array;
        const saved = p[index];
        const eps = 1e-3;
        p[index] = saved + eps;
        const up = referenceLoss(params, x, y, 2, 4, 3);
        p[index] = saved - eps;
        const down = referenceLoss(params, x, y, 2, 4, 3);
        p[index] = saved;
        const numeric = (up - down) / (2 * eps);
        const analytic = (grads.get(name) as Float32Array)[index];
        assert.ok(
          Math.abs(numeric - analytic) < 1e-3 * Math.max(1, Math.abs(numeric)),
          `${name}[${index}]: ${analytic} vs ${numeric}`,
        );
      }
    });
  }
});

describe('selectBackend', () => {
  it('picks blas (wasm without its addon) for auto when no tfjs-node package is installed', async () => {
    assert.equal((await selectBackend('auto')).name, nativeAddonAvailable() ? 'blas' : 'wasm');
  });

  it('rejects an explicit gpu or node choice with the reason', async () => {
    await assert.rejects(
      selectBackend('gpu'),
      /compute backend "gpu" is unavailable: @tensorflow\/tfjs-node-gpu is not installed/,
    );
    await assert.rejects(
      selectBackend('node'),
      /compute backend "node" is unavailable: @tensorflow\/tfjs-node is not installed/,
    );
  });

  it('names the synthetic backend', async () => {
    assert.equal((await selectBackend('synthetic')).name, 'synthetic');
  });
});
