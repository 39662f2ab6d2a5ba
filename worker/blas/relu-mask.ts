import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BlasFunctions } from '../../core/native/addon';
import { floatsOf } from '../cpu-arrays';
import { outputFloats } from './array-pool';

/**
 * dy where the ReLU's output y is positive, else 0: the gradient through y = relu(z), shared by
 * the fused dense and conv ops' gradients. It runs in the addon: it visits every activation of
 * every step, and as a JS loop its data-dependent branch per element was a measurable share of a
 * worker's time.
 */
export const RELU_MASK = 'CaviarReluMask';

export function registerReluMask(backendName: string, addon: BlasFunctions): void {
  if (tf.getKernel(RELU_MASK, backendName)) return;
  tf.registerKernel({
    kernelName: RELU_MASK,
    backendName,
    kernelFunc: ({ inputs, backend }) => {
      const cpu = backend as MathBackendCPU;
      const { dy, y } = inputs as { dy: tf.TensorInfo; y: tf.TensorInfo };
      const g = floatsOf(cpu, dy);
      const masked = outputFloats(cpu, g.length);
      addon.step(floatsOf(cpu, y), 0, masked);
      addon.binary(2, 1, g.length, g, 0, 1, masked, 0, 1, masked);
      return cpu.makeTensorInfo(dy.shape, 'float32', masked);
    },
  });
}

/** The gradient a fused op's products take: dy through the ReLU when it has one. */
export function throughRelu(dy: tf.Tensor, y: tf.Tensor, relu: boolean): tf.Tensor {
  return relu ? (tf.engine().runKernel(RELU_MASK, { dy, y }) as tf.Tensor) : dy;
}
