import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-layers registers tfjs-core's gradients, which the reference loss below needs.
import '@tensorflow/tfjs-layers';
import {
  crossEntropyStats,
  registerSparseSoftmaxCrossEntropy,
  sparseSoftmaxCrossEntropy,
} from '../../worker/sparse-softmax-xent';
import { seededUniform } from '../../core/seeded-random';
import { relativeError } from '../helpers/numeric';

/** Logits of mixed scale (some rows ±60, where a naive exp overflows float32) and labels. */
function batch(
  seed: number,
  n: number,
  classes: number,
): { logits: tf.Tensor2D; labels: tf.Tensor1D } {
  const random = seededUniform(seed);
  const scale = (i: number) => (Math.floor(i / classes) % 3 === 0 ? 60 : 3);
  const logits = Float32Array.from(
    { length: n * classes },
    (_, i) => (random() * 2 - 1) * scale(i),
  );
  const labels = Int32Array.from({ length: n }, () => Math.floor(random() * classes));
  return { logits: tf.tensor2d(logits, [n, classes]), labels: tf.tensor1d(labels, 'int32') };
}

describe('sparse softmax cross-entropy kernels', () => {
  before(async () => {
    await tf.setBackend('cpu');
    registerSparseSoftmaxCrossEntropy('cpu');
  });

  for (const [n, classes] of [
    [1, 2],
    [7, 3],
    [128, 10],
    [33, 100],
  ]) {
    it(`gives tfjs's softmaxCrossEntropy loss and gradient for ${n}×${classes} (1e-5)`, () => {
      const { logits, labels } = batch(n * classes, n, classes);
      const grad = (loss: (x: tf.Tensor) => tf.Scalar) => {
        const { value, grad } = tf.valueAndGrad(loss)(logits);
        return { value: value.dataSync()[0], grad: grad.dataSync() };
      };
      const ours = grad((x) => sparseSoftmaxCrossEntropy(x, labels));
      const theirs = grad(
        (x) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, classes), x) as tf.Scalar,
      );
      assert.ok(Math.abs(ours.value - theirs.value) <= 1e-5 * Math.abs(theirs.value));
      assert.ok(relativeError(theirs.grad, ours.grad) < 1e-5);
    });
  }

  it('scales the gradient by the upstream gradient', () => {
    const { logits, labels } = batch(3, 16, 5);
    const once = tf.grad((x: tf.Tensor) => sparseSoftmaxCrossEntropy(x, labels))(logits);
    const thrice = tf.grad((x: tf.Tensor) => tf.mul(sparseSoftmaxCrossEntropy(x, labels), 3))(
      logits,
    );
    assert.ok(relativeError(tf.mul(once, 3).dataSync(), thrice.dataSync()) < 1e-6);
  });

  it('sums per-example losses and counts hits as tfjs does, the first of tied maxima winning', () => {
    const { logits, labels } = batch(9, 50, 4);
    const values = logits.dataSync().slice();
    // Row 0: a tie between classes 1 and 3; the label is 3, so it is a miss as with tf.argMax.
    values.set([0, 5, 1, 5], 0);
    const labelValues = labels.dataSync().slice();
    labelValues[0] = 3;
    const tied = tf.tensor2d(values, [50, 4]);
    const ys = tf.tensor1d(labelValues, 'int32');
    const stats = crossEntropyStats(values, labelValues, 50, 4);
    const losses = tf.losses.softmaxCrossEntropy(
      tf.oneHot(ys, 4),
      tied,
      undefined,
      undefined,
      tf.Reduction.NONE,
    );
    const hits = tf.sum(tf.equal(tf.argMax(tied, 1), ys)).dataSync()[0];
    assert.ok(Math.abs(stats.lossSum - tf.sum(losses).dataSync()[0]) < 1e-4 * stats.lossSum);
    assert.equal(stats.correct, hits);
    assert.equal(crossEntropyStats(values, labelValues, 1, 4).correct, 0);
  });
});
