import * as tf from '@tensorflow/tfjs-core';
import { backend_util, util } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BlasFunctions } from '../../core/native/addon';
import { cpuKernel, floatsOf } from '../cpu-arrays';
import { broadcastBinary, reducedShape } from './layer-graph-kernels';
import { outputFloats } from './array-pool';

/**
 * The blas backend's own versions of the light kernels a training step is full of once its
 * matrix products are fast: element-wise arithmetic with the broadcasts dense and conv layers
 * use, ReLU and its gradient's Step, and sums over leading or trailing axes (bias gradients).
 * tfjs's cpu backend runs these through one generic loop per op family
 * (a callback per element, index arithmetic per element for any broadcast, a full transpose
 * before every sum over axis 0), which made them most of a step once the products were fast.
 * Each kernel takes float32 in the layouts above and hands anything else to cpu's. The loops
 * themselves run in the native addon (core/native/elementwise.cc), vectorized: even as plain JS
 * loops they were a large share of a worker's CPU.
 */

type Cpu = MathBackendCPU;

/**
 * How one operand of a broadcast binary op is read, as the output is walked as rows × cols:
 * element (r, c) is at r·row + c·col, with row ∈ {0, 1, cols} and col ∈ {0, 1}.
 */
interface Walk {
  row: number;
  col: number;
}

interface Layout {
  rows: number;
  cols: number;
  a: Walk;
  b: Walk;
  shape: number[];
}

const withoutLeadingOnes = (s: readonly number[]): number[] => {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  return s.slice(i);
};

/**
 * Walks for a binary op whose one operand has the output's size and whose other is the same
 * size, a scalar, the output's trailing dims (a bias row) or its leading dims with a last dim
 * of 1 (a per-row value such as softmax's keepDims max). Undefined for other broadcasts.
 */
function layoutOf(a: tf.TensorInfo, b: tf.TensorInfo): Layout | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  let shape: number[];
  try {
    shape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  } catch {
    return undefined;
  }
  const size = util.sizeFromShape(shape);
  const aFull = util.sizeFromShape(a.shape) === size;
  if (size === 0 || (!aFull && util.sizeFromShape(b.shape) !== size)) return undefined;
  const other = aFull ? b : a;
  const n = util.sizeFromShape(other.shape);
  const trimmed = withoutLeadingOnes(other.shape);
  const last = shape[shape.length - 1];
  let cols: number;
  let walk: Walk;
  if (n === size) [cols, walk] = [size, { row: size, col: 1 }];
  else if (n === 1) [cols, walk] = [size, { row: 0, col: 0 }];
  else if (util.arraysEqual(trimmed, shape.slice(shape.length - trimmed.length))) {
    [cols, walk] = [n, { row: 0, col: 1 }];
  } else if (
    other.shape.length === shape.length &&
    other.shape[shape.length - 1] === 1 &&
    util.arraysEqual(other.shape.slice(0, -1), shape.slice(0, -1))
  ) {
    [cols, walk] = [last, { row: 1, col: 0 }];
  } else return undefined;
  const full: Walk = { row: cols, col: 1 };
  return { rows: size / cols, cols, shape, a: aFull ? full : walk, b: aFull ? walk : full };
}

/** The addon's codes for the binary ops (core/native/elementwise.cc). */
const BINARY_OPS = { add: 0, sub: 1, mul: 2, div: 3 } as const;
type BinaryOp = keyof typeof BINARY_OPS;

/** The same ops in JS, for broadcasts the addon's row-and-column walks do not cover. */
const JS_OPS: Record<BinaryOp, (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
};

function binary(addon: BlasFunctions, kernelName: string, op: BinaryOp): tf.KernelFunc {
  const fallback = cpuKernel(kernelName);
  const code = BINARY_OPS[op];
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const l = layoutOf(a, b);
    if (!l) return broadcastBinary(args, JS_OPS[op]) ?? fallback(args);
    const backend = args.backend as Cpu;
    const out = outputFloats(backend, l.rows * l.cols);
    const [av, bv] = [floatsOf(backend, a), floatsOf(backend, b)];
    addon.binary(code, l.rows, l.cols, av, l.a.row, l.a.col, bv, l.b.row, l.b.col, out);
    return backend.makeTensorInfo(l.shape, 'float32', out);
  };
}

function relu(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32') return cpuKernel(tf.Relu)(args);
    const backend = args.backend as Cpu;
    const v = floatsOf(backend, x);
    const out = outputFloats(backend, v.length);
    addon.relu(v, out);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  };
}

function step(addon: BlasFunctions): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32') return cpuKernel(tf.Step)(args);
    const alpha = (args.attrs as unknown as tf.StepAttrs).alpha;
    const backend = args.backend as Cpu;
    const v = floatsOf(backend, x);
    const out = outputFloats(backend, v.length);
    addon.step(v, alpha, out);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  };
}

/** Sum over a leading run of axes (rows × cols → cols) or a trailing run (→ rows). */
const sum =
  (addon: BlasFunctions): tf.KernelFunc =>
  (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const rank = x.shape.length;
    const axes = util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
    const leading = axes.length > 0 && axes[0] === 0 && contiguous;
    const trailing = axes.length > 0 && axes[axes.length - 1] === rank - 1 && contiguous;
    if (x.dtype !== 'float32' || (!leading && !trailing) || axes.length === rank) {
      return cpuKernel(tf.Sum)(args);
    }
    const backend = args.backend as Cpu;
    const v = floatsOf(backend, x);
    const reduced = util.sizeFromShape(axes.map((a) => x.shape[a]));
    const kept = v.length / reduced;
    const out = new Float32Array(kept);
    addon.sum(v, reduced, kept, leading, out);
    return backend.makeTensorInfo(reducedShape(x.shape, axes, keepDims), 'float32', out);
  };

/** The light kernels blas replaces, by tfjs kernel name. */
export function lightKernels(addon: BlasFunctions): Record<string, tf.KernelFunc> {
  return {
    [tf.Add]: binary(addon, tf.Add, 'add'),
    [tf.Sub]: binary(addon, tf.Sub, 'sub'),
    [tf.Multiply]: binary(addon, tf.Multiply, 'mul'),
    [tf.RealDiv]: binary(addon, tf.RealDiv, 'div'),
    [tf.Relu]: relu(addon),
    [tf.Step]: step(addon),
    [tf.Sum]: sum(addon),
  };
}
