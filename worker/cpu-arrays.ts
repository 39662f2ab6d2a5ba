import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

/**
 * For kernels on tfjs's cpu backend or one derived from it (blas), which keep each tensor's
 * values in a plain typed array of this process.
 */

/** The array the backend keeps `t`'s values in: the tensor's own, not a copy. */
export function arrayOf(backend: MathBackendCPU, t: tf.TensorInfo): tf.TypedArray {
  return backend.data.get(t.dataId).values as tf.TypedArray;
}

/** `arrayOf` for a float32 tensor. */
export function floatsOf(backend: MathBackendCPU, t: tf.TensorInfo): Float32Array {
  return arrayOf(backend, t) as Float32Array;
}

/** tfjs's cpu kernel for `kernelName`, which a faster kernel hands the cases it does not take. */
export function cpuKernel(kernelName: string): tf.KernelFunc {
  const kernel = tf.getKernel(kernelName, 'cpu');
  if (!kernel) throw new Error(`tfjs's cpu backend has no ${kernelName} kernel`);
  return kernel.kernelFunc;
}
