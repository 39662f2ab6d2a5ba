import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError } from './errors';
import { modelParams, type ModelSpec, type ParamInfo } from './model-spec';
import { elementCount } from './placement';

// tfjs writes warnings straight to the console (the cpu backend's "install tfjs-node" banner);
// PROD mode silences only those, and caviar reports its backend choice through its own logger.
tf.enableProdMode();

// Kernels start at zero: real initial values come from the parameter servers (model-spec's
// initialParameters), so random initializers here would only cost time.
const dense = (name: string, units: number, activation: 'relu' | 'linear'): tfl.layers.Layer =>
  tfl.layers.dense({
    name,
    units,
    activation,
    kernelInitializer: 'zeros',
    biasInitializer: 'zeros',
  });

function mlpLayers(
  hidden: number[],
  inputShape: readonly number[],
  numClasses: number,
): tfl.layers.Layer[] {
  const layers: tfl.layers.Layer[] = [];
  if (inputShape.length > 1) layers.push(tfl.layers.flatten({ name: 'flatten' }));
  hidden.forEach((units, i) => layers.push(dense(`dense${i}`, units, 'relu')));
  layers.push(dense(`dense${hidden.length}`, numClasses, 'linear'));
  return layers;
}

function lenet5Layers(numClasses: number): tfl.layers.Layer[] {
  const conv = (name: string, filters: number, padding: 'same' | 'valid'): tfl.layers.Layer =>
    tfl.layers.conv2d({
      name,
      filters,
      kernelSize: 5,
      padding,
      activation: 'relu',
      kernelInitializer: 'zeros',
      biasInitializer: 'zeros',
    });
  return [
    conv('conv0', 6, 'same'),
    tfl.layers.averagePooling2d({ name: 'pool0', poolSize: 2 }),
    conv('conv1', 16, 'valid'),
    tfl.layers.averagePooling2d({ name: 'pool1', poolSize: 2 }),
    tfl.layers.flatten({ name: 'flatten' }),
    dense('dense0', 120, 'relu'),
    dense('dense1', 84, 'relu'),
    dense('dense2', numClasses, 'linear'),
  ];
}

/**
 * The tfjs model of a spec, producing logits. Layer names are the canonical parameter prefixes
 * (dense0, conv1, ...), so its trainable weights carry the names of modelParams().
 */
export function buildLayersModel(
  spec: ModelSpec,
  inputShape: readonly number[],
  numClasses: number,
): tfl.LayersModel {
  const params = modelParams(spec, inputShape, numClasses); // validates lenet5's input shape
  const model = tfl.sequential({ name: spec.type });
  model.add(tfl.layers.inputLayer({ name: 'input', inputShape: [...inputShape] }));
  const layers =
    spec.type === 'mlp' ? mlpLayers(spec.hidden, inputShape, numClasses) : lenet5Layers(numClasses);
  layers.forEach((layer) => model.add(layer));
  paramVariables(model, params); // asserts names, order and shapes agree with model-spec
  return model;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The tf.Variable behind each canonical parameter name. Throws if the model's trainable weights
 * are not exactly `params`, in order, with the same shapes: gradients and parameter-server
 * slices are matched by name, so a silent mismatch would train the wrong tensors.
 */
export function paramVariables(
  model: tfl.LayersModel,
  params: readonly ParamInfo[],
): Map<string, tf.Variable> {
  const weights = model.trainableWeights;
  const names = weights.map((w) => w.originalName);
  if (weights.length !== params.length || params.some((p, i) => p.name !== names[i])) {
    throw new Error(
      `tfjs model weights [${names.join(', ')}] differ from the spec's [${params.map((p) => p.name).join(', ')}]`,
    );
  }
  const out = new Map<string, tf.Variable>();
  weights.forEach((w, i) => {
    const v = w.read();
    if (!(v instanceof tf.Variable) || !sameShape(v.shape, params[i].shape)) {
      throw new Error(
        `tfjs weight ${names[i]} has shape [${v.shape.join(', ')}], the spec says [${params[i].shape.join(', ')}]`,
      );
    }
    out.set(params[i].name, v);
  });
  return out;
}

/** Sets every trainable weight from `params` (flat row-major values keyed by canonical name). */
export function setModelParameters(
  model: tfl.LayersModel,
  params: ReadonlyMap<string, Float32Array>,
): void {
  const weights = model.trainableWeights;
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
