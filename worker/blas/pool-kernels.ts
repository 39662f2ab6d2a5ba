import * as tf from '@tensorflow/tfjs-core';
import { backend_util, util } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BlasFunctions } from '../../core/native/addon';
import { cpuKernel, floatsOf } from '../cpu-arrays';
import { convDims } from './conv-dims';
import { outputFloats } from './array-pool';

/**
 * The blas backend's NHWC average and max pooling and their gradients, on the addon's loops
 * (core/native/pool.cc): tfjs's cpu kernels index every element through a buffer, and the JS
 * loops that replaced them still cost as much as the convolution next to them. Float32 NHWC
 * without dilation; any other case goes to cpu's kernel.
 */

type Cpu = MathBackendCPU;

function poolInfo(
  x: tf.TensorInfo,
  attrs: Pick<tf.MaxPoolAttrs, 'filterSize' | 'strides' | 'pad' | 'dimRoundingMode'>,
): backend_util.Conv2DInfo | undefined {
  if (x.dtype !== 'float32' || x.shape.length !== 4) return undefined;
  return backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}

function pool(addon: BlasFunctions, name: typeof tf.AvgPool | typeof tf.MaxPool): tf.KernelFunc {
  const run = name === tf.AvgPool ? addon.avgPool : addon.maxPool;
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const info = poolInfo(x, args.attrs as unknown as tf.MaxPoolAttrs);
    if (!info) return cpuKernel(name)(args);
    const backend = args.backend as Cpu;
    const out = outputFloats(backend, util.sizeFromShape(info.outShape));
    run(floatsOf(backend, x), out, convDims(info));
    return backend.makeTensorInfo(info.outShape, 'float32', out);
  };
}

/** The geometry of a pooling gradient, where dy is the pooling's output shape. */
function gradInfo(
  dy: tf.TensorInfo,
  input: tf.TensorInfo,
  attrs: Pick<tf.MaxPoolAttrs, 'filterSize' | 'strides' | 'pad' | 'dimRoundingMode'>,
): backend_util.Conv2DInfo | undefined {
  const info = poolInfo(input, attrs);
  return info && dy.dtype === 'float32' && util.arraysEqual(info.outShape, dy.shape)
    ? info
    : undefined;
}

function avgPoolGrad(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.AvgPoolGradAttrs;
    const info = gradInfo(dy, input, { ...attrs, dimRoundingMode: undefined });
    if (!info) return cpuKernel(tf.AvgPoolGrad)(args);
    const backend = args.backend as Cpu;
    const dx = outputFloats(backend, util.sizeFromShape(input.shape));
    addon.avgPoolGrad(floatsOf(backend, dy), dx, convDims(info));
    return backend.makeTensorInfo(input.shape, 'float32', dx);
  };
}

function maxPoolGrad(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const info = gradInfo(dy, input, args.attrs as unknown as tf.MaxPoolGradAttrs);
    if (!info) return cpuKernel(tf.MaxPoolGrad)(args);
    const backend = args.backend as Cpu;
    const dx = outputFloats(backend, util.sizeFromShape(input.shape));
    addon.maxPoolGrad(floatsOf(backend, dy), floatsOf(backend, input), dx, convDims(info));
    return backend.makeTensorInfo(input.shape, 'float32', dx);
  };
}

/** The pooling kernels blas replaces, by tfjs kernel name. */
export function poolKernels(addon: BlasFunctions): Record<string, tf.KernelFunc> {
  return {
    [tf.AvgPool]: pool(addon, tf.AvgPool),
    [tf.AvgPoolGrad]: avgPoolGrad(addon),
    [tf.MaxPool]: pool(addon, tf.MaxPool),
    [tf.MaxPoolGrad]: maxPoolGrad(addon),
  };
}
