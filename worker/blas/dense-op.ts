import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BlasFunctions } from '../../core/native/addon';
import { floatsOf } from '../cpu-arrays';

/**
 * A dense layer, y = act(x · W + b) with act ReLU or linear, as one kernel forward and, backward,
 * one kernel per gradient asked for (dx, dW, db) after one for the ReLU mask. Under a gradient
 * tape tfjs does not fuse a ReLU dense layer: it runs MatMul, Add and Relu forward and Step, Cast,
 * Multiply, Sum and two MatMuls back, with reshapes to rank 3 around every MatMul, and saves a
 * clone of each input of each of them. On the blas backend, where the products are fast, that
 * bookkeeping was most of what a step spent outside OpenBLAS. The forward kernel is the backend's
 * own _FusedMatMul, the mask runs in the addon: as a JS loop its data-dependent branch alone cost
 * 4% of a worker's time.
 */
export const DENSE = 'CaviarDense';
const RELU_MASK = 'CaviarReluMask';

type Cpu = MathBackendCPU;

interface DenseAttrs {
  relu: boolean;
}

/** dy where the ReLU's output y is positive, else 0: the gradient through y = relu(z). */
function reluMask(addon: BlasFunctions): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const cpu = backend as Cpu;
    const { dy, y } = inputs as { dy: tf.TensorInfo; y: tf.TensorInfo };
    const g = floatsOf(cpu, dy);
    const masked = new Float32Array(g.length);
    addon.step(floatsOf(cpu, y), 0, masked);
    addon.binary(2, 1, g.length, g, 0, 1, masked, 0, 1, masked);
    return cpu.makeTensorInfo(dy.shape, 'float32', masked);
  };
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
    tf.registerKernel({ kernelName: RELU_MASK, backendName, kernelFunc: reluMask(addon) });
  }
  if (tf.getGradient(DENSE)) return;
  tf.registerGradient({
    kernelName: DENSE,
    inputsToSave: ['x', 'kernel'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, kernel, y] = saved;
      // The mask is shared by all three gradients, so it is made once, here, not in a thunk.
      const g = (attrs as unknown as DenseAttrs).relu
        ? (tf.engine().runKernel(RELU_MASK, { dy: dy as tf.Tensor, y }) as tf.Tensor)
        : (dy as tf.Tensor);
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
