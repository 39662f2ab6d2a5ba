import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { arrayOf } from './cpu-arrays';

/**
 * The mean softmax cross-entropy of logits [n, classes] against class indices [n], as one kernel
 * forward and one backward, like TensorFlow's SparseSoftmaxCrossEntropyWithLogits. tfjs's
 * `losses.softmaxCrossEntropy` takes one-hot labels and runs as dozens of kernels forward and
 * back (max, exp, sums, casts, reshapes, a division for the mean), a large share of the kernels
 * of an MLP training step: each one costs the engine's bookkeeping, and in a fresh process each is
 * more code still waiting to be compiled. The kernels here are for the backends whose tensors
 * are plain arrays in this process (cpu, and blas, which derives from it).
 */
export const SPARSE_XENT = 'CaviarSparseSoftmaxXent';
const SPARSE_XENT_GRAD = 'CaviarSparseSoftmaxXentGrad';

type Cpu = MathBackendCPU;

/** log Σ_j exp(row_j), computed after subtracting the row's max so nothing overflows. */
function logSumExp(logits: tf.TypedArray, at: number, classes: number): number {
  let max = -Infinity;
  for (let j = 0; j < classes; j++) max = Math.max(max, logits[at + j]);
  let sum = 0;
  for (let j = 0; j < classes; j++) sum += Math.exp(logits[at + j] - max);
  return max + Math.log(sum);
}

/** The sum of the per-example losses and the number of examples whose largest logit is the label. */
export function crossEntropyStats(
  logits: tf.TypedArray,
  labels: tf.TypedArray,
  count: number,
  classes: number,
): { lossSum: number; correct: number } {
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < count; i++) {
    const at = i * classes;
    lossSum += logSumExp(logits, at, classes) - logits[at + labels[i]];
    // The first of equal maxima wins, as tf.argMax picks it.
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[at + j] > logits[at + best]) best = j;
    if (best === labels[i]) correct++;
  }
  return { lossSum, correct };
}

function shapeOf(logits: tf.TensorInfo): [number, number] {
  if (logits.shape.length !== 2) throw new Error(`${SPARSE_XENT} wants logits of rank 2`);
  return [logits.shape[0], logits.shape[1]];
}

const forward: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as Cpu;
  const { logits, labels } = inputs as { logits: tf.TensorInfo; labels: tf.TensorInfo };
  const [n, classes] = shapeOf(logits);
  const { lossSum } = crossEntropyStats(arrayOf(cpu, logits), arrayOf(cpu, labels), n, classes);
  return cpu.makeTensorInfo([], 'float32', Float32Array.of(n === 0 ? 0 : lossSum / n));
};

/** d(mean loss)/d logits = dy · (softmax(logits) − one_hot(labels)) / n. */
const backward: tf.KernelFunc = ({ inputs, backend }) => {
  const cpu = backend as Cpu;
  const { dy, logits, labels } = inputs as Record<'dy' | 'logits' | 'labels', tf.TensorInfo>;
  const [n, classes] = shapeOf(logits);
  const x = arrayOf(cpu, logits);
  const y = arrayOf(cpu, labels);
  const scale = arrayOf(cpu, dy)[0] / Math.max(1, n);
  const out = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) {
    const at = i * classes;
    const lse = logSumExp(x, at, classes);
    for (let j = 0; j < classes; j++) out[at + j] = Math.exp(x[at + j] - lse) * scale;
    out[at + y[i]] -= scale;
  }
  return cpu.makeTensorInfo([n, classes], 'float32', out);
};

/**
 * Registers the kernels on a backend whose tensors are plain arrays (cpu or one derived from it),
 * and, once, their gradient. Again later, it does nothing.
 */
export function registerSparseSoftmaxCrossEntropy(backendName: string): void {
  if (!tf.getKernel(SPARSE_XENT, backendName)) {
    tf.registerKernel({ kernelName: SPARSE_XENT, backendName, kernelFunc: forward });
    tf.registerKernel({ kernelName: SPARSE_XENT_GRAD, backendName, kernelFunc: backward });
  }
  if (!tf.getGradient(SPARSE_XENT)) {
    tf.registerGradient({
      kernelName: SPARSE_XENT,
      inputsToSave: ['logits', 'labels'],
      gradFunc: (dy, saved) => {
        const [logits, labels] = saved;
        return {
          logits: () =>
            tf.engine().runKernel(SPARSE_XENT_GRAD, { dy: dy as tf.Tensor, logits, labels }),
          // Class indices have no gradient; tfjs asks only if someone differentiates by them.
          labels: () => tf.zeros(labels.shape, 'float32'),
        };
      },
    });
  }
}

/** The mean loss as a scalar tensor, differentiable in `logits`. Needs the kernels registered. */
export function sparseSoftmaxCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.engine().runKernel(SPARSE_XENT, { logits, labels }) as tf.Scalar;
}
