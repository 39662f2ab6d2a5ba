import * as tf from '@tensorflow/tfjs-core';
import { backend_util, util } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { cpuKernel, floatsOf } from '../cpu-arrays';

/**
 * The blas backend's kernels for what the layer-graph models add to a training step: means over
 * a middle run of axes (global average pooling, BatchNorm's moments), Tile and broadcasts over
 * middle axes (their gradients). tfjs's cpu backend runs these through a transpose or a
 * per-element index walk, which made global average pooling cost more than the convolution
 * before it (pooling is in pool-kernels.ts, BatchNorm in batch-norm-op.ts). Float32 only; any
 * other case goes to cpu's kernel.
 */

type Cpu = MathBackendCPU;

/** A reduction over a contiguous run of axes, as [outer, reduced, inner]; undefined otherwise. */
function reductionOf(
  shape: readonly number[],
  axis: number | number[],
): { outer: number; reduced: number; inner: number; axes: number[] } | undefined {
  const axes = util.parseAxisParam(axis, [...shape]).sort((p, q) => p - q);
  if (axes.length === 0 || !axes.every((a, i) => i === 0 || a === axes[i - 1] + 1))
    return undefined;
  const size = (from: number, to: number) => util.sizeFromShape(shape.slice(from, to));
  const first = axes[0];
  const end = axes[axes.length - 1] + 1;
  return {
    outer: size(0, first),
    reduced: size(first, end),
    inner: size(end, shape.length),
    axes,
  };
}

/** The shape a reduction over `axes` leaves: those dims as 1 with keepDims, else gone. */
export function reducedShape(
  shape: readonly number[],
  axes: readonly number[],
  keepDims: boolean,
): number[] {
  return keepDims
    ? shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : shape.filter((_, i) => !axes.includes(i));
}

const mean: tf.KernelFunc = (args) => {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as tf.MeanAttrs;
  const r = x.dtype === 'float32' ? reductionOf(x.shape, axis) : undefined;
  if (!r) return cpuKernel(tf.Mean)(args);
  const backend = args.backend as Cpu;
  const v = floatsOf(backend, x);
  const { outer, reduced, inner } = r;
  // Sums in double precision, as a long float32 running sum would drift from cpu's result.
  const acc = new Float64Array(inner);
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let m = 0, at = o * reduced * inner; m < reduced; m++, at += inner)
      for (let i = 0; i < inner; i++) acc[i] += v[at + i];
    for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i] / reduced;
  }
  return backend.makeTensorInfo(reducedShape(x.shape, r.axes, keepDims), 'float32', out);
};

/** Tile by whole-block copies, one axis at a time from the last. */
const tile: tf.KernelFunc = (args) => {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { reps } = args.attrs as unknown as tf.TileAttrs;
  if (x.dtype !== 'float32') return cpuKernel(tf.Tile)(args);
  const backend = args.backend as Cpu;
  const source = floatsOf(backend, x);
  let values = source;
  const shape = [...x.shape];
  for (let d = shape.length - 1; d >= 0; d--) {
    if (reps[d] === 1) continue;
    const block = util.sizeFromShape(shape.slice(d));
    const outer = values.length / block;
    const next = new Float32Array(values.length * reps[d]);
    for (let o = 0; o < outer; o++) {
      const src = values.subarray(o * block, (o + 1) * block);
      for (let k = 0; k < reps[d]; k++) next.set(src, (o * reps[d] + k) * block);
    }
    values = next;
    shape[d] *= reps[d];
  }
  return backend.makeTensorInfo(shape, 'float32', values === source ? source.slice() : values);
};

/**
 * How a broadcast binary op walks its operands: the output's dims merged into runs where each
 * operand is either read along (stride) or broadcast (stride 0).
 */
interface BroadcastWalk {
  dims: number[];
  aStrides: number[];
  bStrides: number[];
  shape: number[];
}

function broadcastWalk(a: readonly number[], b: readonly number[]): BroadcastWalk | undefined {
  let shape: number[];
  try {
    shape = backend_util.assertAndGetBroadcastShape([...a], [...b]);
  } catch {
    return undefined;
  }
  const pad = (s: readonly number[]) => [...Array<number>(shape.length - s.length).fill(1), ...s];
  const [pa, pb] = [pad(a), pad(b)];
  // Merge adjacent dims whose operands broadcast alike, so the inner loop is as long as it can be.
  const dims: number[] = [];
  const kinds: Array<[boolean, boolean]> = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const kind: [boolean, boolean] = [pa[i] === d, pb[i] === d];
    const last = kinds[kinds.length - 1];
    if (last && last[0] === kind[0] && last[1] === kind[1]) dims[dims.length - 1] *= d;
    else {
      dims.push(d);
      kinds.push(kind);
    }
  });
  const strides = (reads: boolean[]) => {
    const out = new Array<number>(dims.length).fill(0);
    for (let i = dims.length - 1, s = 1; i >= 0; i--) {
      if (reads[i]) {
        out[i] = s;
        s *= dims[i];
      }
    }
    return out;
  };
  return {
    dims,
    aStrides: strides(kinds.map((k) => k[0])),
    bStrides: strides(kinds.map((k) => k[1])),
    shape,
  };
}

type Op = (x: number, y: number) => number;

/** A broadcast binary op of any float32 shapes; the light kernels' faster loops come first. */
export function broadcastBinary(
  args: Parameters<tf.KernelFunc>[0],
  op: Op,
): tf.TensorInfo | undefined {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const walk = broadcastWalk(a.shape, b.shape);
  if (!walk) return undefined;
  const backend = args.backend as Cpu;
  const [av, bv] = [floatsOf(backend, a), floatsOf(backend, b)];
  const out = new Float32Array(util.sizeFromShape(walk.shape));
  const { dims, aStrides, bStrides } = walk;
  let at = 0;
  const visit = (d: number, ai: number, bi: number): void => {
    const n = dims[d];
    if (d === dims.length - 1) {
      const [sa, sb] = [aStrides[d], bStrides[d]];
      for (let k = 0; k < n; k++) out[at++] = op(av[ai + k * sa], bv[bi + k * sb]);
      return;
    }
    for (let k = 0; k < n; k++) visit(d + 1, ai + k * aStrides[d], bi + k * bStrides[d]);
  };
  if (dims.length === 0) out[0] = op(av[0], bv[0]);
  else visit(0, 0, 0);
  return backend.makeTensorInfo(walk.shape, 'float32', out);
}

/** The kernels blas replaces for layer-graph models, by tfjs kernel name. */
export function layerGraphKernels(): Record<string, tf.KernelFunc> {
  return {
    [tf.Mean]: mean,
    [tf.Tile]: tile,
  };
}
