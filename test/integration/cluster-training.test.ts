import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { LocalCluster } from '../../client/local-cluster';
import { CoordinatorClient } from '../../core/coordinator-client';
import { loadSplits } from '../../core/datasets';
import { epochBatches } from '../../core/batches';
import { initialParameters, modelParams, parseModelSpec } from '../../core/model-spec';
import { elementCount } from '../../core/placement';
import { buildLayersModel, setModelParameters, paramVariables } from '../../core/layers-model';
import { loadExportedModel } from '../../core/export-model';
import { lastJsonLine, REPO_ROOT, runCaviar, testOutputDir } from '../helpers/repo';
import * as path from 'node:path';
import '../helpers/reaper';
import { trainCompleted } from '../helpers/train-run';
import type { TrainSummary } from '../../client/summary';

const SPIRALS = 'synthetic:spirals';

/**
 * The same trial, trained by one process with tfjs's own Adam: same initial values, same
 * batches in the same order, same loss.
 */
async function trainSingleProcess(
  modelText: string,
  seed: number,
  batch: number,
  epochs: number,
  lr: number,
): Promise<Map<string, Float32Array>> {
  await tf.setBackend('cpu');
  const splits = await loadSplits(SPIRALS);
  const { train } = splits;
  const spec = parseModelSpec(modelText);
  const params = modelParams(spec, train.featureShape, train.numClasses);
  const model = buildLayersModel(spec, train.featureShape, train.numClasses);
  setModelParameters(model, initialParameters(params, seed));
  const variables = paramVariables(model, params);
  // BatchNorm's moving statistics are not trained: its layer updates them as it runs training.
  const trained = params
    .filter((p) => p.movingAverage === undefined)
    .map((p) => variables.get(p.name)!);
  const optimizer = tf.train.adam(lr, 0.9, 0.999, 1e-8);
  const size = elementCount(train.featureShape);
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (const indices of epochBatches(train.count, batch, seed, epoch)) {
      const x = new Float32Array(indices.length * size);
      const y = new Int32Array(indices.length);
      indices.forEach((at, i) => {
        x.set(train.features.subarray(at * size, (at + 1) * size), i * size);
        y[i] = train.labels[at];
      });
      tf.tidy(() => {
        const xs = tf.tensor(x, [indices.length, ...train.featureShape]);
        const ys = tf.oneHot(tf.tensor1d(y, 'int32'), train.numClasses);
        optimizer.minimize(
          () =>
            tf.losses.softmaxCrossEntropy(
              ys,
              model.apply(xs, { training: true }) as tf.Tensor,
            ) as tf.Scalar,
          false,
          trained,
        );
      });
    }
  }
  const out = new Map<string, Float32Array>();
  for (const [name, variable] of variables) out.set(name, variable.dataSync() as Float32Array);
  model.dispose();
  optimizer.dispose();
  return out;
}

/** Trains `modelText` on 1 worker in sync mode and compares every tensor with trainSingleProcess's. */
async function expectSingleProcessResult(modelText: string, logName: string): Promise<void> {
  const [seed, batch, epochs, lr] = [7, 64, 2, 0.01];
  const cluster = await new LocalCluster({
    workers: 1,
    shards: 2,
    backend: 'cpu',
    logDir: testOutputDir(logName),
  }).start();
  const client = new CoordinatorClient(cluster.coordinator);
  try {
    const submitted = await client.submitTrial({
      dataset: SPIRALS,
      model: modelText,
      optimizer: { kind: 'adam', lr },
      batch,
      epochs,
      mode: 'sync',
      seed,
    });
    let last = submitted;
    for await (const status of client.watchTrial(submitted.trial)) last = status;
    assert.equal(last.status, 'completed', last.error);
    assert.equal(Number(last.batches_applied), Number(last.batches_scheduled));
    const params = modelParams(parseModelSpec(modelText), last.input_shape, last.num_classes);
    const cluster_ = await client.getParameters(
      last.trial,
      params.map((p) => ({ name: p.name, size: elementCount(p.shape) })),
    );
    const reference = await trainSingleProcess(modelText, seed, batch, epochs, lr);
    const initial = initialParameters(params, seed);
    for (const p of params) {
      const a = cluster_.get(p.name)!;
      const b = reference.get(p.name)!;
      let maxDiff = 0;
      let moved = 0;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        moved = Math.max(moved, Math.abs(a[i] - initial.get(p.name)![i]));
      }
      assert.ok(maxDiff <= 1e-5, `${p.name}: cluster and single process differ by ${maxDiff}`);
      assert.ok(moved > 1e-3, `${p.name} did not train (moved ${moved})`);
    }
  } finally {
    client.close();
    await cluster.close();
  }
}

test(
  '1 worker in sync mode matches a single-process tfjs loop within 1e-5',
  { timeout: 180_000 },
  () => expectSingleProcessResult('mlp:16', 'equivalence'),
);

test(
  "BatchNorm on a parameter server: trained weights and moving statistics match tfjs's own BatchNormalization run over the same batches (1 worker, sync, 1e-5)",
  { timeout: 180_000 },
  () =>
    expectSingleProcessResult(
      JSON.stringify({
        // No bias right before a BatchNorm: its gradient is zero but for rounding, which Adam
        // scales up to steps of lr, so two correct runs need not agree on it.
        layers: [
          { type: 'batch_norm', momentum: 0.9 },
          { type: 'dense', units: 16, activation: 'tanh' },
          { type: 'batch_norm', momentum: 0.8 },
        ],
      }),
      'equivalence-batch-norm',
    ),
);

test(
  '2 workers and 2 shards train MNIST to >= 0.88 validation accuracy in 2 epochs, and the export loads back',
  { timeout: 300_000 },
  async () => {
    const out = testOutputDir('mnist');
    const result = await runCaviar(
      [
        'train',
        '--local',
        '--dataset',
        'mnist',
        '--model',
        'mlp:256',
        '--workers',
        '2',
        '--shards',
        '2',
        '--epochs',
        '2',
        '--batch',
        '128',
        '--lr',
        '1e-3',
        '--export',
        `${out}/model`,
        '--json',
      ],
      { timeoutMs: 280_000 },
    );
    assert.equal(result.code, 0, result.stderr);
    const summary = lastJsonLine<TrainSummary>(result.stdout);
    assert.equal(summary.status, 'completed');
    assert.equal(summary.epochs, 2);
    assert.ok(
      summary.val_accuracy !== null && summary.val_accuracy >= 0.88,
      `val accuracy ${summary.val_accuracy}`,
    );
    assert.equal(
      summary.batches_applied,
      summary.batches_scheduled,
      'every scheduled batch applied exactly once',
    );
    assert.ok(summary.examples_per_s > 0);
    for (const key of ['trial', 'seconds', 'examples', 'train_loss', 'val_loss', 'backend'])
      assert.ok(key in summary, key);

    await expectExportMatches(`${out}/model`, summary.val_accuracy);
  },
);

/** The exported LayersModel, read back by tfjs, reproduces the reported validation accuracy. */
async function expectExportMatches(dir: string, reported: number): Promise<void> {
  await tf.setBackend('cpu');
  const model = await loadExportedModel(dir);
  const { validation } = await loadSplits('mnist');
  const accuracy = tf.tidy(() => {
    const x = tf.tensor(validation.features, [validation.count, ...validation.featureShape]);
    const predicted = tf.argMax(model.predict(x) as tf.Tensor, -1);
    return tf
      .mean(tf.cast(tf.equal(predicted, tf.tensor1d(validation.labels, 'int32')), 'float32'))
      .dataSync()[0];
  });
  model.dispose();
  assert.ok(
    Math.abs(accuracy - reported) < 2e-3,
    `exported model accuracy ${accuracy} vs reported ${reported}`,
  );
}

test(
  'a ResNet with BatchNorm and Dropout from a JSON spec trains MNIST to >= 0.97 validation accuracy; its export (moving statistics included) predicts the same',
  { timeout: 300_000 },
  async () => {
    const out = testOutputDir('resnet');
    // Sync with 2 workers (two batches a step, summed in either order to the same bits) makes
    // the run the same every time on one machine.
    const summary = await trainCompleted(
      [
        '--local',
        '--dataset',
        'mnist',
        '--model',
        path.join(REPO_ROOT, 'examples', 'models', 'resnet-dropout-mnist.json'),
        '--workers',
        '2',
        '--shards',
        '2',
        '--mode',
        'sync',
        '--epochs',
        '12',
        '--batch',
        '32',
        '--lr',
        '3e-3',
        '--lr-decay',
        'exp:0.8',
        '--export',
        `${out}/model`,
      ],
      { timeoutMs: 280_000 },
    );
    assert.ok(
      summary.val_accuracy !== null && summary.val_accuracy >= 0.97,
      `val accuracy ${summary.val_accuracy}`,
    );
    await expectExportMatches(`${out}/model`, summary.val_accuracy);
  },
);
