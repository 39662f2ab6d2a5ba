import * as tf from '@tensorflow/tfjs-core';
import type { BlasFunctions } from '../../core/native/addon';
import { registerReluMask, throughRelu } from './relu-mask';

/**
 * A conv2d layer, y = act(conv(x, W) + b) with act ReLU or linear (NHWC, no dilation), as one
 * kernel forward (the backend's FusedConv2D, bias and ReLU inside the addon's convolution) and,
 * backward, one kernel per gradient after one for the ReLU mask. Under a gradient tape tfjs does
 * not fuse bias and activation into a convolution: a LeNet-5 step ran Add, Relu, Step, Multiply
 * and Sum over every activation map besides the convolutions, which weigh on a step once the
 * convolutions are fast.
 */
export const CONV = 'CaviarConv2D';

interface ConvAttrs {
  strides: [number, number];
  pad: 'same' | 'valid';
  relu: boolean;
}

function forwardOn(backendName: string): tf.KernelFunc {
  const fused = tf.getKernel(tf.FusedConv2D, backendName);
  if (!fused) throw new Error(`backend ${backendName} has no ${tf.FusedConv2D} kernel`);
  return ({ inputs, backend, attrs }) => {
    const { x, filter, bias } = inputs as Record<'x' | 'filter' | 'bias', tf.TensorInfo>;
    const { strides, pad, relu } = attrs as unknown as ConvAttrs;
    const fusedAttrs: Partial<tf.FusedConv2DAttrs> = {
      strides,
      pad,
      dataFormat: 'NHWC',
      dilations: [1, 1],
      activation: relu ? 'relu' : 'linear',
    };
    return fused.kernelFunc({
      inputs: { x, filter, bias },
      backend,
      attrs: fusedAttrs as unknown as tf.NamedAttrMap,
    });
  };
}

/**
 * Registers the op's kernels on `backendName` (a cpu-derived backend with FusedConv2D and both
 * convolution gradients) and, once, its gradient. Again later, it does nothing.
 */
export function registerConvOp(backendName: string, addon: BlasFunctions): void {
  if (!tf.getKernel(CONV, backendName)) {
    tf.registerKernel({ kernelName: CONV, backendName, kernelFunc: forwardOn(backendName) });
    registerReluMask(backendName, addon);
  }
  if (tf.getGradient(CONV)) return;
  tf.registerGradient({
    kernelName: CONV,
    inputsToSave: ['x', 'filter'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter, y] = saved;
      const { strides, pad, relu } = attrs as unknown as ConvAttrs;
      const g = throughRelu(dy as tf.Tensor, y, relu);
      const geometry = { strides, pad, dataFormat: 'NHWC' };
      return {
        x: () =>
          tf
            .engine()
            .runKernel(
              tf.Conv2DBackpropInput,
              { dy: g, filter },
              { ...geometry, inputShape: x.shape },
            ) as tf.Tensor,
        filter: () =>
          tf
            .engine()
            .runKernel(
              tf.Conv2DBackpropFilter,
              { x, dy: g },
              { ...geometry, filterShape: filter.shape },
            ) as tf.Tensor,
        bias: () => tf.engine().runKernel(tf.Sum, { x: g }, { axis: [0, 1, 2], keepDims: false }),
      };
    },
  });
}

/** act(conv(x, filter) + bias) for x [n, h, w, c], filter [fh, fw, c, out]. Needs the op registered. */
export function conv2d(
  x: tf.Tensor,
  filter: tf.Tensor,
  bias: tf.Tensor,
  attrs: ConvAttrs,
): tf.Tensor {
  return tf
    .engine()
    .runKernel(CONV, { x, filter, bias }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}
