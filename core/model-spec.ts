import * as fs from 'node:fs';
import { InvalidArgumentError } from './errors';
import { elementCount, type TensorShape } from './placement';
import { bulkUniform, normalStream, uniformStream, type DrawStream } from './seeded-random';
import { drain } from './yielding';
import type { SeededInit } from '../proto/gen/caviar/v1/SeededInit';

/** A model the cluster can train: an MLP with ReLU hidden layers, or LeNet-5 for 28x28x1 images. */
export type ModelSpec = { type: 'mlp'; hidden: number[] } | { type: 'lenet5' };

const SPEC_HELP = 'expected mlp:UNITS[,UNITS...] (e.g. mlp:256,128), lenet5, or a JSON file';

function parseHidden(list: unknown, source: string): number[] {
  if (!Array.isArray(list) || list.length === 0)
    throw new InvalidArgumentError(`model spec "${source}": ${SPEC_HELP}`);
  return list.map((u) => {
    const n = typeof u === 'number' ? u : Number(String(u).trim());
    if (!Number.isInteger(n) || n < 1 || n > 65_536) {
      throw new InvalidArgumentError(
        `model spec "${source}": hidden layer size "${String(u)}" is not an integer in 1..65536`,
      );
    }
    return n;
  });
}

function fromObject(value: unknown, source: string): ModelSpec {
  if (!value || typeof value !== 'object')
    throw new InvalidArgumentError(`model spec "${source}": ${SPEC_HELP}`);
  const obj = value as Record<string, unknown>;
  if (obj.type === 'lenet5') return { type: 'lenet5' };
  if (obj.type === 'mlp') return { type: 'mlp', hidden: parseHidden(obj.hidden, source) };
  throw new InvalidArgumentError(
    `model spec "${source}": unknown type ${JSON.stringify(obj.type)}; ${SPEC_HELP}`,
  );
}

/** Parses `mlp:256,128`, `lenet5`, a JSON object text, or the path of a JSON file holding one. */
export function parseModelSpec(text: string): ModelSpec {
  const spec = text.trim();
  if (spec === 'lenet5') return { type: 'lenet5' };
  if (spec.startsWith('mlp:'))
    return { type: 'mlp', hidden: parseHidden(spec.slice(4).split(','), spec) };
  if (spec.startsWith('{')) {
    try {
      return fromObject(JSON.parse(spec), spec);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err;
      throw new InvalidArgumentError(`model spec "${spec}" is not valid JSON`, { cause: err });
    }
  }
  if (spec.endsWith('.json')) {
    let body: string;
    try {
      body = fs.readFileSync(spec, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError(`model spec file ${spec} cannot be read`, { cause: err });
    }
    try {
      return fromObject(JSON.parse(body), spec);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err;
      throw new InvalidArgumentError(`model spec file ${spec} is not valid JSON`, { cause: err });
    }
  }
  throw new InvalidArgumentError(`model spec "${spec}": ${SPEC_HELP}`);
}

/** The canonical text of a spec, as stored in a trial. */
export function formatModelSpec(spec: ModelSpec): string {
  return spec.type === 'mlp' ? `mlp:${spec.hidden.join(',')}` : spec.type;
}

/** A trainable tensor and how it is initialized. */
export interface ParamInfo extends TensorShape {
  init: 'he_normal' | 'glorot_uniform' | 'zeros';
  fanIn: number;
  fanOut: number;
}

/**
 * The trainable tensors of a model, in the order of the tfjs LayersModel's trainableWeights
 * (kernel then bias, layer by layer). ReLU layers get He-normal kernels; the output layer gets
 * Glorot-uniform; biases start at zero.
 */
export function modelParams(
  spec: ModelSpec,
  inputShape: readonly number[],
  numClasses: number,
): ParamInfo[] {
  const params: ParamInfo[] = [];
  const dense = (name: string, fanIn: number, fanOut: number, output: boolean): void => {
    params.push({
      name: `${name}/kernel`,
      shape: [fanIn, fanOut],
      init: output ? 'glorot_uniform' : 'he_normal',
      fanIn,
      fanOut,
    });
    params.push({ name: `${name}/bias`, shape: [fanOut], init: 'zeros', fanIn, fanOut });
  };
  if (spec.type === 'mlp') {
    let fanIn = elementCount(inputShape);
    spec.hidden.forEach((units, i) => {
      dense(`dense${i}`, fanIn, units, false);
      fanIn = units;
    });
    dense(`dense${spec.hidden.length}`, fanIn, numClasses, true);
    return params;
  }
  if (inputShape.length !== 3 || inputShape[0] !== 28 || inputShape[1] !== 28) {
    throw new InvalidArgumentError(
      `lenet5 needs 28x28xC images; this data set has features of shape [${inputShape.join(', ')}]`,
    );
  }
  const channels = inputShape[2];
  const conv = (name: string, k: number, cin: number, cout: number): void => {
    params.push({
      name: `${name}/kernel`,
      shape: [k, k, cin, cout],
      init: 'he_normal',
      fanIn: k * k * cin,
      fanOut: k * k * cout,
    });
    params.push({
      name: `${name}/bias`,
      shape: [cout],
      init: 'zeros',
      fanIn: k * k * cin,
      fanOut: k * k * cout,
    });
  };
  conv('conv0', 5, channels, 6);
  conv('conv1', 5, 6, 16);
  dense('dense0', 400, 120, false);
  dense('dense1', 120, 84, false);
  dense('dense2', 84, numClasses, true);
  return params;
}

export function parameterCount(params: readonly TensorShape[]): number {
  return params.reduce((sum, p) => sum + elementCount(p.shape), 0);
}

/** Initial values for every parameter, a pure function of (params, seed). */
export function initialParameters(
  params: readonly ParamInfo[],
  seed: number,
): Map<string, Float32Array> {
  return new Map(params.map((p) => [p.name, initialSlice(p, seed)]));
}

/** What a shard needs to draw its slices of `params` itself (an Init's SeededInit). */
export function seededInit(params: readonly ParamInfo[], seed: number): SeededInit {
  return {
    seed,
    params: params.map((p) => ({
      name: p.name,
      shape: [...p.shape],
      init: p.init,
      fan_in: p.fanIn,
      fan_out: p.fanOut,
    })),
  };
}

/**
 * Elements [start, start + length) of `p`'s initial values, the same as initialParameters's for
 * the whole tensor, without holding the rest of it.
 */
export function initialSlice(
  p: ParamInfo,
  seed: number,
  start = 0,
  length = elementCount(p.shape) - start,
): Float32Array {
  const out = new Float32Array(length);
  drain(drawInitialValues(p, seed, [{ start, out }]));
  return out;
}

/** Where a range of a tensor's initial values goes: elements [start, start + out.length). */
export interface InitialRange {
  start: number;
  out: Float32Array;
}

/**
 * Fills each range's `out` with its elements of `p`'s initial values in one walk of the tensor's
 * stream of draws (a draw's value depends on the ones before it: Box-Muller pairs, rejection of
 * zero), passing over the elements between ranges cheaply. Pauses (a yield) after about every
 * `round` draws, so an async caller can let other work run between rounds. Ranges must not
 * overlap; they may come in any order.
 */
export function* drawInitialValues(
  p: ParamInfo,
  seed: number,
  ranges: readonly InitialRange[],
  round = 1 << 17,
): Generator<void> {
  const stream = initialStream(p, seed);
  if (!stream) return;
  let at = 0;
  for (const { start, out } of [...ranges].sort((a, b) => a.start - b.start)) {
    if (start < at) throw new RangeError(`${p.name}: initial ranges overlap at element ${start}`);
    // Skipping costs about a fifth of drawing, so it goes in rounds five times longer.
    for (; at < start; yield) {
      const n = Math.min(start - at, 5 * round);
      stream.skip(n);
      at += n;
    }
    for (let k = 0; k < out.length; yield) {
      const end = Math.min(out.length, k + round);
      for (; k < end; k++) out[k] = stream.next();
    }
    at = start + out.length;
  }
}

/** The stream of `p`'s initial values in element order; undefined for zeros. */
function initialStream(p: ParamInfo, seed: number): DrawStream | undefined {
  const uniform = bulkUniform(`init:${seed}:${p.name}`);
  if (p.init === 'he_normal') {
    const normal = normalStream(uniform);
    const std = Math.sqrt(2 / p.fanIn);
    return { next: () => normal.next() * std, skip: normal.skip };
  }
  if (p.init === 'glorot_uniform') {
    const limit = Math.sqrt(6 / (p.fanIn + p.fanOut));
    const draws = uniformStream(uniform);
    return { next: () => (uniform() * 2 - 1) * limit, skip: draws.skip };
  }
  return undefined;
}
