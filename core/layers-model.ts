import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError } from './errors';
import { resolveModel, type ModelSpec, type ParamInfo } from './model-spec';
import { graphParams } from './model-graph/params';
import type { GraphNode, ResolvedGraph } from './model-graph/resolve';
import { elementCount } from './placement';

// tfjs writes warnings straight to the console (the cpu backend's "install tfjs-node" banner);
// PROD mode silences only those, and caviar reports its backend choice through its own logger.
tf.enableProdMode();

// Weights start at zero: real initial values come from the parameter servers (model-spec's
// initialParameters), so random initializers here would only cost time.
const ZEROS = { kernelInitializer: 'zeros', biasInitializer: 'zeros' } as const;

/** The tfjs layer of one node; a residual block's is its addition. */
function layerOf(node: GraphNode): tfl.layers.Layer {
  const name = node.name;
  switch (node.kind) {
    case 'dense':
      return tfl.layers.dense({ name, units: node.units, activation: node.activation, ...ZEROS });
    case 'conv2d':
      return tfl.layers.conv2d({
        name,
        filters: node.filters,
        kernelSize: node.kernel,
        strides: node.stride,
        padding: node.padding,
        activation: node.activation,
        ...ZEROS,
      });
    case 'pool': {
      const config = { name, poolSize: node.size, strides: node.stride, padding: node.padding };
      return node.op === 'max'
        ? tfl.layers.maxPooling2d(config)
        : tfl.layers.averagePooling2d(config);
    }
    case 'global_avg_pool':
      return tfl.layers.globalAveragePooling2d({ name });
    case 'flatten':
      return tfl.layers.flatten({ name });
    case 'dropout':
      return tfl.layers.dropout({ name, rate: node.rate });
    case 'activation':
      return tfl.layers.activation({ name, activation: node.activation });
    case 'batch_norm':
      return tfl.layers.batchNormalization({
        name,
        axis: -1,
        momentum: node.momentum,
        epsilon: node.epsilon,
      });
    case 'residual':
      return tfl.layers.add({ name });
  }
}

/** The tfjs layers of a resolved model, by node name (a residual block's output activation too). */
export type GraphLayers = ReadonlyMap<string, tfl.layers.Layer>;

function connect(
  nodes: readonly GraphNode[],
  input: tfl.SymbolicTensor,
  layers: Map<string, tfl.layers.Layer>,
): tfl.SymbolicTensor {
  return nodes.reduce((h, node) => {
    const layer = layerOf(node);
    layers.set(node.name, layer);
    if (node.kind !== 'residual') return layer.apply(h) as tfl.SymbolicTensor;
    const body = connect(node.body, h, layers);
    let shortcut = h;
    if (node.projection) {
      const projection = layerOf(node.projection);
      layers.set(node.projection.name, projection);
      shortcut = projection.apply(h) as tfl.SymbolicTensor;
    }
    const sum = layer.apply([body, shortcut]) as tfl.SymbolicTensor;
    const out = tfl.layers.activation({ name: `${node.name}_out`, activation: node.activation });
    layers.set(out.name, out);
    return out.apply(sum) as tfl.SymbolicTensor;
  }, input);
}

/**
 * The tfjs model of a spec, producing logits, and its layers by name. Layer names are the
 * canonical parameter prefixes (dense0, conv1, ...), so its weights carry modelParams()'s names.
 */
export function buildGraphModel(
  spec: ModelSpec,
  inputShape: readonly number[],
  numClasses: number,
): { model: tfl.LayersModel; graph: ResolvedGraph; layers: GraphLayers } {
  const graph = resolveModel(spec, inputShape, numClasses);
  const input = tfl.input({ name: 'input', shape: [...inputShape] });
  const layers = new Map<string, tfl.layers.Layer>();
  const output = connect(graph.nodes, input, layers);
  const model = tfl.model({ name: spec.type, inputs: input, outputs: output });
  paramVariables(model, graphParams(graph)); // asserts names and shapes agree with model-spec
  return { model, graph, layers };
}

/** The tfjs model of a spec, producing logits. */
export function buildLayersModel(
  spec: ModelSpec,
  inputShape: readonly number[],
  numClasses: number,
): tfl.LayersModel {
  return buildGraphModel(spec, inputShape, numClasses).model;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The tf.Variable behind each canonical parameter name. Throws if the model's weights (trainable
 * or, as BatchNorm's moving statistics, not) are not exactly `params`, with the same shapes:
 * gradients and parameter-server slices are matched by name, so a silent mismatch would train
 * the wrong tensors.
 */
export function paramVariables(
  model: tfl.LayersModel,
  params: readonly ParamInfo[],
): Map<string, tf.Variable> {
  const weights = new Map(model.weights.map((w) => [w.originalName, w]));
  const names = [...weights.keys()];
  if (weights.size !== params.length || params.some((p) => !weights.has(p.name))) {
    throw new Error(
      `tfjs model weights [${names.join(', ')}] differ from the spec's [${params.map((p) => p.name).join(', ')}]`,
    );
  }
  const out = new Map<string, tf.Variable>();
  for (const p of params) {
    const v = (weights.get(p.name) as tfl.LayerVariable).read();
    if (!(v instanceof tf.Variable) || !sameShape(v.shape, p.shape)) {
      throw new Error(
        `tfjs weight ${p.name} has shape [${v.shape.join(', ')}], the spec says [${p.shape.join(', ')}]`,
      );
    }
    out.set(p.name, v);
  }
  return out;
}

/** Sets every weight from `params` (flat row-major values keyed by canonical name). */
export function setModelParameters(
  model: tfl.LayersModel,
  params: ReadonlyMap<string, Float32Array>,
): void {
  const weights = model.weights;
  const known = new Set(weights.map((w) => w.originalName));
  for (const name of params.keys()) {
    if (!known.has(name)) throw new InvalidArgumentError(`parameter ${name} is not in the model`);
  }
  tf.tidy(() => {
    for (const w of weights) {
      const shape = w.read().shape;
      const values = params.get(w.originalName);
      if (!values || values.length !== elementCount(shape)) {
        const got = values ? `${values.length} values` : 'no values';
        throw new InvalidArgumentError(
          `parameter ${w.originalName} needs ${elementCount(shape)} values, got ${got}`,
        );
      }
      // A copy: the cpu backend would otherwise keep the caller's array, which it may reuse.
      w.write(tf.tensor(values.slice(), shape, 'float32'));
    }
  });
}
