import * as tf from '@tensorflow/tfjs-core';
import { backend_util, broadcast_util, util } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BlasFunctions } from '../../core/native/addon';
import { convDims } from './conv-dims';
import { cpuKernel, floatsOf } from '../cpu-arrays';
import { outputFloats } from './array-pool';

/**
 * tfjs kernels on the blas addon, for a backend that is tfjs's cpu backend otherwise. Each one
 * takes the case it is fast for (float32, NHWC, bias of one value per output column, linear or
 * ReLU activation) and hands anything else to cpu's own kernel for the same op, so the blas
 * backend computes what cpu computes, everywhere.
 */

type Attrs = Record<string, unknown>;
type Cpu = MathBackendCPU;

function runCpu(
  kernelName: string,
  inputs: tf.NamedTensorInfoMap,
  backend: Cpu,
  attrs: Attrs = {},
) {
  return cpuKernel(kernelName)({
    inputs,
    backend,
    attrs: attrs as tf.NamedAttrMap,
  }) as tf.TensorInfo;
}

const allFloat32 = (...ts: Array<tf.TensorInfo | undefined>): boolean =>
  ts.every((t) => t === undefined || t.dtype === 'float32');

/** A bias that adds one value per output column of [..., columns] and changes no shape. */
function columnBias(bias: tf.TensorInfo | undefined, outRank: number, columns: number): boolean {
  if (!bias) return true;
  const s = bias.shape;
  return (
    s.length >= 1 &&
    s.length <= outRank &&
    s[s.length - 1] === columns &&
    s.slice(0, -1).every((d) => d === 1)
  );
}

/** The cpu kernel of each activation _FusedMatMul and FusedConv2D may ask for. */
function activate(
  backend: Cpu,
  x: tf.TensorInfo,
  activation: tf.fused.Activation,
  alpha: tf.TensorInfo | undefined,
  leakyreluAlpha: number | undefined,
): tf.TensorInfo {
  switch (activation) {
    case 'linear':
      return runCpu(tf.Identity, { x }, backend);
    case 'relu':
      return runCpu(tf.Relu, { x }, backend);
    case 'relu6':
      return runCpu(tf.Relu6, { x }, backend);
    case 'elu':
      return runCpu(tf.Elu, { x }, backend);
    case 'sigmoid':
      return runCpu(tf.Sigmoid, { x }, backend);
    case 'leakyrelu':
      return runCpu(tf.LeakyRelu, { x }, backend, { alpha: leakyreluAlpha });
    case 'prelu':
      return runCpu(tf.Prelu, { x, alpha: alpha as tf.TensorInfo }, backend);
  }
  throw new Error(`activation ${String(activation)} is not implemented`);
}

/** Adds the bias and applies the activation with cpu kernels, disposing the intermediates. */
function biasAndActivation(
  backend: Cpu,
  y: tf.TensorInfo,
  bias: tf.TensorInfo | undefined,
  activation: tf.fused.Activation | undefined,
  alpha: tf.TensorInfo | undefined,
  leakyreluAlpha: number | undefined,
): tf.TensorInfo {
  let out = y;
  if (bias) {
    out = runCpu(tf.Add, { a: y, b: bias }, backend);
    backend.disposeIntermediateTensorInfo(y);
  }
  if (activation && activation !== 'linear') {
    const before = out;
    out = activate(backend, before, activation, alpha, leakyreluAlpha);
    backend.disposeIntermediateTensorInfo(before);
  }
  return out;
}

/**
 * What is left after the addon ran a fused product: nothing when it also added the bias and
 * applied a linear or ReLU activation itself, otherwise the bias and/or activation on cpu.
 */
function finishFused(
  backend: Cpu,
  y: tf.TensorInfo,
  biasFused: boolean,
  bias: tf.TensorInfo | undefined,
  attrs: { activation?: tf.fused.Activation; leakyreluAlpha?: number },
  alpha: tf.TensorInfo | undefined,
): tf.TensorInfo {
  const { activation, leakyreluAlpha } = attrs;
  if (biasFused && (!activation || activation === 'linear' || activation === 'relu')) return y;
  return biasAndActivation(
    backend,
    y,
    biasFused ? undefined : bias,
    activation,
    alpha,
    leakyreluAlpha,
  );
}

interface Gemm {
  m: number;
  n: number;
  k: number;
  batch: number;
  strideA: number;
  strideB: number;
  outShape: number[];
}

/**
 * The sgemm calls of a BatchMatMul: one per batch entry, an operand with one batch entry
 * broadcast by stride 0. Undefined where cpu must decide (mismatched shapes, mixed batch dims).
 */
function gemmOf(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean) {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const [m, ka] = transposeA
    ? [a.shape[ra - 1], a.shape[ra - 2]]
    : [a.shape[ra - 2], a.shape[ra - 1]];
  const [kb, n] = transposeB
    ? [b.shape[rb - 1], b.shape[rb - 2]]
    : [b.shape[rb - 2], b.shape[rb - 1]];
  if (ka !== kb) return undefined;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = util.sizeFromShape(outerA);
  const batchB = util.sizeFromShape(outerB);
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return undefined;
  let outer: number[];
  try {
    outer = broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return undefined;
  }
  const batch = util.sizeFromShape(outer);
  if (batch !== Math.max(batchA, batchB)) return undefined;
  const gemm: Gemm = {
    m,
    n,
    k: ka,
    batch,
    strideA: batchA === 1 ? 0 : m * ka,
    strideB: batchB === 1 ? 0 : ka * n,
    outShape: [...outer, m, n],
  };
  return gemm;
}

function runGemm(
  addon: BlasFunctions,
  backend: Cpu,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  attrs: { transposeA: boolean; transposeB: boolean },
  g: Gemm,
  bias: Float32Array | null,
  relu: boolean,
): tf.TensorInfo {
  const out = outputFloats(backend, g.batch * g.m * g.n);
  addon.gemm(
    attrs.transposeA,
    attrs.transposeB,
    g.m,
    g.n,
    g.k,
    floatsOf(backend, a),
    floatsOf(backend, b),
    out,
    g.batch,
    g.strideA,
    g.strideB,
    bias,
    relu,
  );
  return backend.makeTensorInfo(g.outShape, 'float32', out);
}

function batchMatMul(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.BatchMatMulAttrs;
    const g = allFloat32(a, b) ? gemmOf(a, b, attrs.transposeA, attrs.transposeB) : undefined;
    if (!g) return cpuKernel(tf.BatchMatMul)(args);
    return runGemm(addon, args.backend as Cpu, a, b, attrs, g, null, false);
  };
}

function fusedMatMul(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as tf._FusedMatMulInputs;
    const attrs = args.attrs as unknown as tf._FusedMatMulAttrs;
    const backend = args.backend as Cpu;
    const g = allFloat32(a, b) ? gemmOf(a, b, attrs.transposeA, attrs.transposeB) : undefined;
    if (!g) return cpuKernel(tf._FusedMatMul)(args);
    const fuseBias = allFloat32(bias) && columnBias(bias, g.outShape.length, g.n);
    const y = runGemm(
      addon,
      backend,
      a,
      b,
      attrs,
      g,
      fuseBias && bias ? floatsOf(backend, bias) : null,
      fuseBias && attrs.activation === 'relu',
    );
    return finishFused(backend, y, fuseBias, bias, attrs, preluActivationWeights);
  };
}

/** Conv2D's geometry where blas computes it (NHWC), else undefined. */
function convInfoOf(x: tf.TensorInfo, filter: tf.TensorInfo, attrs: tf.Conv2DAttrs) {
  if (!allFloat32(x, filter) || attrs.dataFormat === 'NCHW') return undefined;
  if (x.shape.length !== 4 || filter.shape.length !== 4 || x.shape[3] !== filter.shape[2])
    return undefined;
  return backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

function runConv(
  addon: BlasFunctions,
  backend: Cpu,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: backend_util.Conv2DInfo,
  bias: Float32Array | null,
  relu: boolean,
): tf.TensorInfo {
  const y = outputFloats(backend, util.sizeFromShape(info.outShape));
  addon.conv2d(floatsOf(backend, x), floatsOf(backend, filter), y, convDims(info), bias, relu);
  return backend.makeTensorInfo(info.outShape, 'float32', y);
}

function conv2D(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const info = convInfoOf(x, filter, args.attrs as unknown as tf.Conv2DAttrs);
    if (!info) return cpuKernel(tf.Conv2D)(args);
    return runConv(addon, args.backend as Cpu, x, filter, info, null, false);
  };
}

function fusedConv2D(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as tf.FusedConv2DInputs;
    const attrs = args.attrs as unknown as tf.FusedConv2DAttrs;
    const backend = args.backend as Cpu;
    const info = convInfoOf(x, filter, attrs);
    if (!info) return cpuKernel(tf.FusedConv2D)(args);
    const fuseBias = allFloat32(bias) && columnBias(bias, 4, info.outChannels);
    const y = runConv(
      addon,
      backend,
      x,
      filter,
      info,
      fuseBias && bias ? floatsOf(backend, bias) : null,
      fuseBias && attrs.activation === 'relu',
    );
    return finishFused(backend, y, fuseBias, bias, attrs, preluActivationWeights);
  };
}

function conv2DBackpropInput(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if (!allFloat32(dy, filter) || attrs.dataFormat === 'NCHW' || filter.shape.length !== 4) {
      return cpuKernel(tf.Conv2DBackpropInput)(args);
    }
    const info = backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      'channelsLast',
    );
    if (!util.arraysEqual(info.outShape, dy.shape)) return cpuKernel(tf.Conv2DBackpropInput)(args);
    const backend = args.backend as Cpu;
    const dx = outputFloats(backend, util.sizeFromShape(info.inShape));
    addon.conv2dBackpropInput(floatsOf(backend, dy), floatsOf(backend, filter), dx, convDims(info));
    return backend.makeTensorInfo(info.inShape, 'float32', dx);
  };
}

function conv2DBackpropFilter(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (!allFloat32(x, dy) || attrs.dataFormat === 'NCHW' || x.shape.length !== 4) {
      return cpuKernel(tf.Conv2DBackpropFilter)(args);
    }
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      'channelsLast',
    );
    if (!util.arraysEqual(info.outShape, dy.shape)) return cpuKernel(tf.Conv2DBackpropFilter)(args);
    const backend = args.backend as Cpu;
    const dw = outputFloats(backend, util.sizeFromShape(attrs.filterShape));
    addon.conv2dBackpropFilter(floatsOf(backend, x), floatsOf(backend, dy), dw, convDims(info));
    return backend.makeTensorInfo(attrs.filterShape, 'float32', dw);
  };
}

/** The kernels blas replaces, by tfjs kernel name; every other kernel is cpu's. */
export function blasKernels(addon: BlasFunctions): Record<string, tf.KernelFunc> {
  return {
    [tf.BatchMatMul]: batchMatMul(addon),
    [tf._FusedMatMul]: fusedMatMul(addon),
    [tf.Conv2D]: conv2D(addon),
    [tf.FusedConv2D]: fusedConv2D(addon),
    [tf.Conv2DBackpropInput]: conv2DBackpropInput(addon),
    [tf.Conv2DBackpropFilter]: conv2DBackpropFilter(addon),
  };
}
