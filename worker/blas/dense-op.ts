import * as tf from '@tensorflow/tfjs-core';
import type { BlasFunctions } from '../../core/native/addon';
import { registerReluMask, throughRelu } from './relu-mask';

/**
 * A dense layer, y = act(x · W + b) with act ReLU or linear, as one kernel forward and, backward,
 * one kernel per gradient asked for (dx, dW, db) after one for the ReLU mask. Under a gradient
 * tape tfjs does not fuse a ReLU dense layer: it runs MatMul, Add and Relu forward and Step, Cast,
 * Multiply, Sum and two MatMuls back, with reshapes to rank 3 around every MatMul, and saves a
 * clone of each input of each of them. On the blas backend, where the products are fast, that
 * bookkeeping was most of what a step spent outside OpenBLAS. The forward kernel is the backend's
 * own _FusedMatMul; the ReLU mask is relu-mask.ts's.
 */
export const DENSE = 'CaviarDense';

interface DenseAttrs {
  relu: boolean;
}

function forwardOn(backendName: string): tf.KernelFunc {
  const fused = tf.getKernel(tf._FusedMatMul, backendName);
  if (!fused) throw new Error(`backend ${backendName} has no ${tf._FusedMatMul} kernel`);
  return ({ inputs, backend, attrs }) => {
    const { x, kernel, bias } = inputs as Record<'x' | 'kernel' | 'bias', tf.TensorInfo>;
    const { relu } = attrs as unknown as DenseAttrs;
    const fusedAttrs: Partial<tf._FusedMatMulAttrs> = {
      transposeA: false,
      transposeB: false,
      activation: relu ? 'relu' : 'linear',
    };
    return fused.kernelFunc({
      inputs: { a: x, b: kernel, bias },
      backend,
      attrs: fusedAttrs as unknown as tf.NamedAttrMap,
    });
  };
}

const matMul = (a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean) =>
  tf.engine().runKernel(tf.BatchMatMul, { a, b }, { transposeA, transposeB }) as tf.Tensor;

/**
 * Registers the op's kernels on `backendName`, a backend derived from cpu whose _FusedMatMul is
 * registered, and, once, its gradient. Again later, it does nothing.
 */
export function registerDenseOp(backendName: string, addon: BlasFunctions): void {
  if (!tf.getKernel(DENSE, backendName)) {
    tf.registerKernel({ kernelName: DENSE, backendName, kernelFunc: forwardOn(backendName) });
    registerReluMask(backendName, addon);
  }
  if (tf.getGradient(DENSE)) return;
  tf.registerGradient({
    kernelName: DENSE,
    inputsToSave: ['x', 'kernel'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, kernel, y] = saved;
      // The mask is shared by all three gradients, so it is made once, here, not in a thunk.
      const g = throughRelu(dy as tf.Tensor, y, (attrs as unknown as DenseAttrs).relu);
      return {
        x: () => matMul(g, kernel, false, true),
        kernel: () => matMul(x, g, true, false),
        bias: () => tf.engine().runKernel(tf.Sum, { x: g }, { axis: [0], keepDims: false }),
      };
    },
  });
}

/** act(x · kernel + bias) for x [n, in], kernel [in, out], bias [out]. Needs the op registered. */
export function dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, relu: boolean): tf.Tensor {
  const attrs: DenseAttrs = { relu };
  return tf
    .engine()
    .runKernel(DENSE, { x, kernel, bias }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}
