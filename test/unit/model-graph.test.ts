import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '../../core/errors';
import {
  formatModelSpec,
  initialParameters,
  modelParams,
  parameterCount,
  parseModelSpec,
  type ModelSpec,
} from '../../core/model-spec';
import { ModelSpecError, parseModelGraph } from '../../core/model-graph/parse-graph';
import { buildLayersModel, setModelParameters } from '../../core/layers-model';
import { nativeAddonAvailable } from '../../core/native/addon';
import { selectBackend } from '../../worker/select-backend';
import { relativeError } from '../helpers/numeric';
import { REPO_ROOT } from '../helpers/repo';

const MODELS = path.join(REPO_ROOT, 'examples', 'models');

function problem(text: string): ModelSpecError {
  try {
    parseModelGraph(text, 'model.yaml');
  } catch (err) {
    assert.ok(err instanceof ModelSpecError, `not a ModelSpecError: ${String(err)}`);
    assert.ok(err instanceof InvalidArgumentError);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return err;
  }
  assert.fail(`the spec parsed:\n${text}`);
}

describe('layer-graph model spec', () => {
  it('keeps the short forms: mlp and lenet5 have the names, shapes and initializers they had', () => {
    const mlp = modelParams(parseModelSpec('mlp:8'), [28, 28, 1], 3);
    assert.deepEqual(
      mlp.map((p) => [p.name, p.shape, p.init, p.fanIn, p.fanOut]),
      [
        ['dense0/kernel', [784, 8], 'he_normal', 784, 8],
        ['dense0/bias', [8], 'zeros', 784, 8],
        ['dense1/kernel', [8, 3], 'glorot_uniform', 8, 3],
        ['dense1/bias', [3], 'zeros', 8, 3],
      ],
    );
    const lenet = modelParams(parseModelSpec('lenet5'), [28, 28, 1], 10);
    assert.deepEqual(
      lenet.filter((p) => p.name.endsWith('kernel')).map((p) => [p.name, p.shape, p.init]),
      [
        ['conv0/kernel', [5, 5, 1, 6], 'he_normal'],
        ['conv1/kernel', [5, 5, 6, 16], 'he_normal'],
        ['dense0/kernel', [400, 120], 'he_normal'],
        ['dense1/kernel', [120, 84], 'he_normal'],
        ['dense2/kernel', [84, 10], 'glorot_uniform'],
      ],
    );
    assert.equal(parameterCount(lenet), 61_706);
  });

  it('counts VGG-16 and AlexNet as their papers do (the large-model cases are expressible)', () => {
    const vgg = parseModelSpec(path.join(MODELS, 'vgg16.yaml'));
    assert.equal(parameterCount(modelParams(vgg, [224, 224, 3], 1000)), 138_357_544);
    const alexnet = parseModelSpec(path.join(MODELS, 'alexnet.yaml'));
    assert.equal(parameterCount(modelParams(alexnet, [224, 224, 3], 1000)), 61_100_840);
  });

  it('resnet:N has 6N+1 convolutions in blocks, projections where a stage shrinks, and BatchNorm state', () => {
    const params = modelParams(parseModelSpec('resnet:3'), [32, 32, 3], 10);
    const convs = params.filter((p) => p.name.endsWith('/kernel') && p.shape.length === 4);
    assert.equal(convs.filter((p) => !p.name.includes('proj')).length, 19);
    assert.deepEqual(
      convs.filter((p) => p.name.includes('proj')).map((p) => p.shape),
      [
        [1, 1, 16, 32],
        [1, 1, 32, 64],
      ],
    );
    const moving = params.filter((p) => p.movingAverage !== undefined);
    assert.equal(moving.length, 2 * 19);
    assert.ok(moving.every((p) => p.movingAverage === 0.99));
    assert.deepEqual(
      params.filter((p) => p.name.startsWith('bn0/')).map((p) => [p.name, p.init]),
      [
        ['bn0/gamma', 'ones'],
        ['bn0/beta', 'zeros'],
        ['bn0/moving_mean', 'zeros'],
        ['bn0/moving_variance', 'ones'],
      ],
    );
  });

  it('travels as one line of JSON that parses back to the same model', () => {
    const spec = parseModelSpec(path.join(MODELS, 'resnet-mnist.json'));
    const text = formatModelSpec(spec);
    assert.ok(text.startsWith('{') && !text.includes('\n'));
    assert.deepEqual(parseModelSpec(text), spec);
    assert.equal(formatModelSpec(parseModelSpec('resnet:2')), 'resnet:2');
  });

  it('draws ones for BatchNorm gamma and moving variance, zeros for beta and moving mean', () => {
    const spec = parseModelSpec('{"layers":[{"type":"batch_norm"}]}');
    const values = initialParameters(modelParams(spec, [4], 2), 1);
    assert.deepEqual(values.get('bn0/gamma'), Float32Array.of(1, 1, 1, 1));
    assert.deepEqual(values.get('bn0/moving_mean'), new Float32Array(4));
  });

  it('names the place of each bad spec, one line, file:line:col', () => {
    const cases: Array<[string, RegExp]> = [
      [
        'layers:\n  - { type: dense, units: 4 }\n  - { type: convolution }\n',
        /^model\.yaml:3:13: layers\[1\]\.type: expected one of dense, conv2d/,
      ],
      [
        'input: [8, 8, 1]\nlayers:\n  - { type: conv2d, filters: 4, kernel: 3 }\n  - { type: conv2d, filters: 4, kernel: 7 }\n',
        /^model\.yaml:4:41: layers\[1\]\.kernel: kernel 7x7 is larger than its 6x6x4 input/,
      ],
      [
        'input: [8, 8, 1]\nlayers:\n  - type: residual\n    layers: [{ type: flatten }]\n',
        /^model\.yaml:3:5: layers\[0\]: the block's output 64 cannot be projected from its input 8x8x1/,
      ],
      [
        'layers:\n  - { type: dropout, rate: -0.5 }\n',
        /^model\.yaml:2:28: layers\[0\]\.rate: expected a rate in \[0, 1\)/,
      ],
      [
        'input: [4]\nlayers:\n  - { type: dense, units: 4, activation: softmax }\n  - { type: dense, units: 2 }\n',
        /^model\.yaml:3:42: layers\[0\]\.activation: softmax goes on the last layer only/,
      ],
      [
        'layers:\n  - { type: dense, units: 4, size: 2 }\n',
        /^model\.yaml:2:30: layers\[0\]\.size: unknown key/,
      ],
    ];
    for (const [text, expected] of cases) assert.match(problem(text).message, expected);
  });

  it('refuses a spec that does not fit the data set, naming the layer', () => {
    const spec = parseModelSpec('{"layers":[{"type":"conv2d","filters":2,"kernel":3}]}');
    assert.throws(
      () => modelParams(spec, [784], 10),
      /model spec: layers\[0\]: conv2d needs an image input/,
    );
    const head = parseModelSpec(
      '{"input":[4],"layers":[{"type":"dense","units":3,"activation":"softmax"}]}',
    );
    assert.throws(
      () => modelParams(head, [4], 10),
      /the softmax layer has 3 units; the data set has 10 classes/,
    );
    assert.throws(() => parseModelSpec('resnet:0'), /resnet:N takes N/);
  });
});

/** Every layer type in one graph, dropout off: the reference is tfjs's own LayersModel. */
const EVERY_LAYER: ModelSpec = parseModelSpec(
  JSON.stringify({
    layers: [
      { type: 'conv2d', filters: 4, kernel: 3, padding: 'same', activation: 'linear', l2: 0.01 },
      { type: 'batch_norm', momentum: 0.9 },
      { type: 'activation', activation: 'relu' },
      { type: 'max_pool', size: 2 },
      {
        type: 'residual',
        layers: [
          { type: 'conv2d', filters: 6, kernel: [3, 2], stride: 2, padding: 'same' },
          { type: 'conv2d', filters: 6, kernel: 1, activation: 'tanh', l1: 0.01 },
        ],
      },
      { type: 'avg_pool', size: 2, padding: 'same' },
      { type: 'residual', layers: [{ type: 'batch_norm' }], activation: 'sigmoid' },
      { type: 'global_avg_pool' },
      { type: 'dense', units: 5, activation: 'sigmoid' },
      { type: 'dropout', rate: 0 },
    ],
  }),
);

/** Loss and gradients of the tfjs LayersModel itself in training mode, plus the kernels' penalties. */
function referenceGradients(
  spec: ModelSpec,
  params: Map<string, Float32Array>,
  x: Float32Array,
  labels: Int32Array,
): Map<string, Float32Array> {
  const model = buildLayersModel(spec, [12, 12, 2], 3);
  setModelParameters(model, params);
  const penalties: Array<[string, 'l1' | 'l2', number]> = [
    ['conv0/kernel', 'l2', 0.01],
    ['res0_conv1/kernel', 'l1', 0.01],
  ];
  const byName = new Map(model.trainableWeights.map((w) => [w.originalName, w.read()]));
  const { grads } = tf.variableGrads(
    () => {
      const logits = model.apply(tf.tensor(x, [labels.length, 12, 12, 2]), { training: true });
      let loss = tf.losses.softmaxCrossEntropy(
        tf.oneHot(tf.tensor1d(labels, 'int32'), 3),
        logits as tf.Tensor,
      );
      for (const [name, kind, weight] of penalties) {
        const w = byName.get(name) as tf.Variable;
        loss = tf.add(loss, tf.mul(weight, tf.sum(kind === 'l1' ? tf.abs(w) : tf.square(w))));
      }
      return loss as tf.Scalar;
    },
    [...byName.values()] as tf.Variable[],
  );
  const out = new Map<string, Float32Array>();
  for (const [name, v] of byName)
    out.set(name, grads[(v as tf.Variable).name].dataSync() as Float32Array);
  model.dispose();
  return out;
}

describe('layer-graph training step', () => {
  const count = 16;
  const x = Float32Array.from({ length: count * 12 * 12 * 2 }, (_, i) => Math.sin(i * 0.37));
  const labels = Int32Array.from({ length: count }, (_, i) => i % 3);
  const params = initialParameters(modelParams(EVERY_LAYER, [12, 12, 2], 3), 5);

  for (const backendName of ['cpu', 'blas'] as const) {
    const skip = backendName === 'blas' && !nativeAddonAvailable() ? 'no native addon' : false;
    it(
      `gives tfjs's own gradients for every layer type on ${backendName} (1e-4)`,
      { skip },
      async () => {
        const backend = await selectBackend(backendName);
        const model = backend.createModel(EVERY_LAYER, [12, 12, 2], 3);
        model.setParameters(params);
        const mine = model.gradients(x, labels, count, 'k');
        await tf.setBackend('cpu');
        const reference = referenceGradients(EVERY_LAYER, params, x, labels);
        for (const [name, g] of reference) {
          const got = mine.grads.get(name) as Float32Array;
          // Biases just before a BatchNorm have a gradient of zero but for rounding (~1e-9).
          const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
          const err = norm < 1e-6 ? relativeError(got, g) : relativeError(g, got);
          assert.ok(err < 1e-4 || norm < 1e-6, `${name}: ${err}`);
        }
        // BatchNorm's moving statistics carry the batch's mean and variance of its input.
        const mean = mine.grads.get('bn0/moving_mean') as Float32Array;
        const variance = mine.grads.get('bn0/moving_variance') as Float32Array;
        assert.equal(mean.length, 4);
        assert.ok(variance.every((v) => v > 0));
        model.dispose();
      },
    );
  }

  it('draws the same dropout masks for the same key, other masks for another', async () => {
    const spec = parseModelSpec(
      '{"layers":[{"type":"dense","units":64},{"type":"dropout","rate":0.5}]}',
    );
    const backend = await selectBackend('cpu');
    const model = backend.createModel(spec, [12, 12, 2], 3);
    model.setParameters(initialParameters(modelParams(spec, [12, 12, 2], 3), 2));
    const grad = (key: string) =>
      (model.gradients(x, labels, count, key).grads.get('dense1/kernel') as Float32Array).slice();
    const a = grad('t:1:0:3');
    assert.deepEqual(grad('t:1:0:3'), a);
    assert.notDeepEqual(grad('t:1:0:4'), a);
    const evalA = model.evaluate(x, labels, count);
    assert.deepEqual(model.evaluate(x, labels, count), evalA, 'no dropout at evaluation');
    model.dispose();
  });
});
