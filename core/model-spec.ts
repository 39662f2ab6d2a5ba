import * as fs from 'node:fs';
import { InvalidArgumentError } from './errors';
import { elementCount, type TensorShape } from './placement';
import { bulkUniform, normalStream, uniformStream, type DrawStream } from './seeded-random';
import { drain } from './yielding';
import { fieldName } from './spec-file';
import type { ModelGraph } from './model-graph/layer-spec';
import { parseModelGraph } from './model-graph/parse-graph';
import { graphParams, type ParamInfo } from './model-graph/params';
import {
  lenet5Graph,
  mlpGraph,
  PRESET_FORMS,
  resnetGraph,
  vggSmallGraph,
} from './model-graph/presets';
import { GraphProblem, resolveGraph, type ResolvedGraph } from './model-graph/resolve';
import type { SeededInit } from '../proto/gen/caviar/v1/SeededInit';

export type { ParamInfo } from './model-graph/params';

/**
 * A model the cluster can train: the short forms (an MLP with ReLU hidden layers, LeNet-5) or a
 * layer graph, from a file or a preset (`preset` is its short form, kept as the trial's text).
 */
export type ModelSpec =
  | { type: 'mlp'; hidden: number[] }
  | { type: 'lenet5' }
  | { type: 'graph'; graph: ModelGraph; preset?: string };

const SPEC_HELP = `expected ${PRESET_FORMS.join(', ')}, a JSON or YAML file, or JSON text`;

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

/** `{"type": "mlp", ...}` and `{"type": "lenet5"}`, the JSON forms of the short forms. */
function shortFormObject(value: unknown, source: string): ModelSpec | undefined {
  if (!value || typeof value !== 'object' || !('type' in value)) return undefined;
  const obj = value as Record<string, unknown>;
  if (obj.type === 'lenet5') return { type: 'lenet5' };
  if (obj.type === 'mlp') return { type: 'mlp', hidden: parseHidden(obj.hidden, source) };
  throw new InvalidArgumentError(
    `model spec "${source}": unknown type ${JSON.stringify(obj.type)}; ${SPEC_HELP}`,
  );
}

function parseJsonOrGraph(text: string, source: string): ModelSpec {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined; // YAML, or bad JSON: the graph parser says where
  }
  return shortFormObject(value, source) ?? { type: 'graph', graph: parseModelGraph(text, source) };
}

function presetSpec(spec: string): ModelSpec | undefined {
  if (spec === 'lenet5') return { type: 'lenet5' };
  if (spec.startsWith('mlp:'))
    return { type: 'mlp', hidden: parseHidden(spec.slice(4).split(','), spec) };
  if (spec === 'vgg:small') return { type: 'graph', graph: vggSmallGraph(), preset: spec };
  const resnet = /^resnet:(\S*)$/.exec(spec);
  if (!resnet) return undefined;
  const n = Number(resnet[1]);
  if (!/^\d+$/.test(resnet[1]) || n < 1 || n > 50)
    throw new InvalidArgumentError(
      `model spec "${spec}": resnet:N takes N, the blocks per stage, in 1..50 (resnet:3 is ResNet-20)`,
    );
  return { type: 'graph', graph: resnetGraph(n), preset: spec };
}

/**
 * Parses a short form (`mlp:256,128`, `lenet5`, `resnet:3`, `vgg:small`), JSON text, or the
 * path of a JSON or YAML file holding a layer graph (or a short form's JSON object).
 */
export function parseModelSpec(text: string): ModelSpec {
  const spec = text.trim();
  const preset = presetSpec(spec);
  if (preset) return preset;
  if (spec.startsWith('{')) return parseJsonOrGraph(spec, 'model');
  if (/\.(json|ya?ml)$/i.test(spec)) {
    let body: string;
    try {
      body = fs.readFileSync(spec, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError(`model spec file ${spec} cannot be read`, { cause: err });
    }
    return parseJsonOrGraph(body, spec);
  }
  throw new InvalidArgumentError(`model spec "${spec}": ${SPEC_HELP}`);
}

/**
 * The canonical text of a spec, as stored in a trial and sent to workers: a short form, or the
 * graph as one line of JSON (a file's contents travel, not its path).
 */
export function formatModelSpec(spec: ModelSpec): string {
  if (spec.type === 'mlp') return `mlp:${spec.hidden.join(',')}`;
  if (spec.type === 'lenet5') return 'lenet5';
  return spec.preset ?? JSON.stringify(spec.graph);
}

function graphOf(spec: ModelSpec): ModelGraph {
  if (spec.type === 'mlp') return mlpGraph(spec.hidden);
  if (spec.type === 'lenet5') return lenet5Graph();
  return spec.graph;
}

/**
 * The model for examples of `inputShape` and `numClasses` classes, every layer named and
 * shaped. Throws InvalidArgumentError naming the layer where the spec does not fit the data.
 */
export function resolveModel(
  spec: ModelSpec,
  inputShape: readonly number[],
  numClasses: number,
): ResolvedGraph {
  if (
    spec.type === 'lenet5' &&
    (inputShape.length !== 3 || inputShape[0] !== 28 || inputShape[1] !== 28)
  ) {
    throw new InvalidArgumentError(
      `lenet5 needs 28x28xC images; this data set has features of shape [${inputShape.join(', ')}]`,
    );
  }
  try {
    return resolveGraph(graphOf(spec), inputShape, numClasses);
  } catch (err) {
    if (!(err instanceof GraphProblem)) throw err;
    const where = spec.type === 'graph' ? (spec.preset ?? 'spec') : formatModelSpec(spec);
    throw new InvalidArgumentError(`model ${where}: ${fieldName(err.path)}: ${err.message}`);
  }
}

/**
 * The trainable tensors (and BatchNorm's moving statistics) of a model, layer by layer, named as
 * the tfjs LayersModel's weights (`dense0/kernel`). ReLU layers get He-normal kernels, others and
 * the head Glorot-uniform; biases start at zero.
 */
export function modelParams(
  spec: ModelSpec,
  inputShape: readonly number[],
  numClasses: number,
): ParamInfo[] {
  return graphParams(resolveModel(spec, inputShape, numClasses));
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
      moving_average: p.movingAverage ?? 0,
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
    // Skipping is cheaper than drawing, so its rounds are longer for about the same time a round.
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
  if (p.init === 'ones') return { next: () => 1, skip: () => undefined };
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
