import * as tf from '@tensorflow/tfjs-core';
import { util } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BlasFunctions } from '../../core/native/addon';
import { cpuKernel, floatsOf } from '../cpu-arrays';
import { outputFloats } from './array-pool';

/**
 * BatchNorm over the last axis on the addon (core/native/batch-norm.cc): a training op that
 * normalizes by the batch's moments and returns them (for the shards' moving averages), with its
 * gradient in closed form, and FusedBatchNorm (normalizing by given statistics, as evaluation
 * does). tfjs differentiates tf.moments and tf.batchNorm op by op: some twenty broadcast
 * multiplies, means, tiles and casts over each activation map, most of a small BatchNorm
 * ResNet's step.
 */
export const BATCH_NORM_TRAIN = 'CaviarBatchNormTrain';
const BATCH_NORM_GRAD = 'CaviarBatchNormGrad';

type Cpu = MathBackendCPU;

interface BatchNormAttrs {
  epsilon: number;
}

const channelsOf = (x: tf.TensorInfo): number => x.shape[x.shape.length - 1];

function train(addon: BlasFunctions): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const cpu = backend as Cpu;
    const { x, gamma, beta } = inputs as Record<'x' | 'gamma' | 'beta', tf.TensorInfo>;
    const C = channelsOf(x);
    const y = outputFloats(cpu, util.sizeFromShape(x.shape));
    const mean = new Float32Array(C);
    const variance = new Float32Array(C);
    const { epsilon } = attrs as unknown as BatchNormAttrs;
    addon.batchNormTrain(
      floatsOf(cpu, x),
      floatsOf(cpu, gamma),
      floatsOf(cpu, beta),
      C,
      epsilon,
      y,
      mean,
      variance,
    );
    return [
      cpu.makeTensorInfo(x.shape, 'float32', y),
      cpu.makeTensorInfo([C], 'float32', mean),
      cpu.makeTensorInfo([C], 'float32', variance),
    ];
  };
}

function grad(addon: BlasFunctions): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const cpu = backend as Cpu;
    const { dy, x, gamma, mean, variance } = inputs as Record<string, tf.TensorInfo>;
    const C = channelsOf(x);
    const dx = outputFloats(cpu, util.sizeFromShape(x.shape));
    const dgamma = new Float32Array(C);
    const dbeta = new Float32Array(C);
    const [g, v, ga, m, va] = [dy, x, gamma, mean, variance].map((t) => floatsOf(cpu, t));
    const { epsilon } = attrs as unknown as BatchNormAttrs;
    addon.batchNormGrad(g, v, ga, m, va, C, epsilon, dx, dgamma, dbeta);
    return [
      cpu.makeTensorInfo(x.shape, 'float32', dx),
      cpu.makeTensorInfo([C], 'float32', dgamma),
      cpu.makeTensorInfo([C], 'float32', dbeta),
    ];
  };
}

/** FusedBatchNorm with per-channel float32 statistics; anything else goes to cpu's kernel. */
function infer(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, tf.TensorInfo>;
    const { varianceEpsilon } = args.attrs as unknown as tf.FusedBatchNormAttrs;
    const C = channelsOf(x);
    const perChannel = [mean, variance, offset, scale].every(
      (t) => t && t.dtype === 'float32' && util.sizeFromShape(t.shape) === C,
    );
    if (x.dtype !== 'float32' || !perChannel) return cpuKernel(tf.FusedBatchNorm)(args);
    const cpu = args.backend as Cpu;
    const y = outputFloats(cpu, util.sizeFromShape(x.shape));
    const [v, m, va, sc, o] = [x, mean, variance, scale, offset].map((t) => floatsOf(cpu, t));
    addon.batchNormInfer(v, m, va, sc, o, C, varianceEpsilon, y);
    return cpu.makeTensorInfo(x.shape, 'float32', y);
  };
}

/** The FusedBatchNorm kernel blas replaces. */
export function batchNormKernels(addon: BlasFunctions): Record<string, tf.KernelFunc> {
  return { [tf.FusedBatchNorm]: infer(addon) };
}

/**
 * Registers the training op's kernels on `backendName` and, once, its gradient. Again later, it
 * does nothing.
 */
export function registerBatchNormOp(backendName: string, addon: BlasFunctions): void {
  if (!tf.getKernel(BATCH_NORM_TRAIN, backendName)) {
    tf.registerKernel({ kernelName: BATCH_NORM_TRAIN, backendName, kernelFunc: train(addon) });
    tf.registerKernel({ kernelName: BATCH_NORM_GRAD, backendName, kernelFunc: grad(addon) });
  }
  if (tf.getGradient(BATCH_NORM_TRAIN)) return;
  tf.registerGradient({
    kernelName: BATCH_NORM_TRAIN,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      // The moments are handed out, not used by the loss: only y's gradient flows back.
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, gamma, mean, variance] = saved;
      const [dx, dgamma, dbeta] = tf
        .engine()
        .runKernel(BATCH_NORM_GRAD, { dy, x, gamma, mean, variance }, attrs) as tf.Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  });
}

/**
 * BatchNorm of x by its own batch's moments over every axis but the last: [y, mean, variance].
 * Needs the op registered.
 */
export function batchNormTrain(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const attrs: BatchNormAttrs = { epsilon };
  return tf
    .engine()
    .runKernel(BATCH_NORM_TRAIN, { x, gamma, beta }, attrs as unknown as tf.NamedAttrMap) as [
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
  ];
}
