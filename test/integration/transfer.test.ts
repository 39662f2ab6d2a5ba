import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrialSpec } from '../../proto/gen/caviar/v1/TrialSpec';
import type { TrialStatus__Output } from '../../proto/gen/caviar/v1/TrialStatus';
import { LocalCluster } from '../../client/local-cluster';
import { CoordinatorClient } from '../../core/coordinator-client';
import { exportLayersModel } from '../../core/export-model';
import { modelParams, parseModelSpec } from '../../core/model-spec';
import { elementCount } from '../../core/placement';
import { assertExactlyOnce, submit } from '../helpers/cluster';
import { idxFile } from '../helpers/image-files';
import { runCaviar, tempDir, testOutputDir } from '../helpers/repo';

const DIGITS = path.dirname(require.resolve('mnist/src/digits/0.json'));
const PIXELS = 784;

/**
 * IDX files of `perDigit` examples of each of `digits` from the mnist package, interleaved,
 * labelled with the digit itself: digits 5-9 make a 10-class data set whose first 5 classes are
 * empty, so its head has another shape than a 0-4 model's.
 */
function digitFiles(dir: string, digits: number[], perDigit: number, skip = 0): string {
  const data = digits.map(
    (d) =>
      (JSON.parse(fs.readFileSync(path.join(DIGITS, `${d}.json`), 'utf8')) as { data: number[] })
        .data,
  );
  const pixels = new Uint8Array(digits.length * perDigit * PIXELS);
  const labels = new Uint8Array(digits.length * perDigit);
  for (let i = 0; i < perDigit; i++) {
    digits.forEach((d, k) => {
      const at = i * digits.length + k;
      const from = (skip + i) * PIXELS;
      for (let p = 0; p < PIXELS; p++)
        pixels[at * PIXELS + p] = Math.round(data[k][from + p] * 255);
      labels[at] = d;
    });
  }
  fs.mkdirSync(dir, { recursive: true });
  const images = path.join(dir, 'images.idx');
  const labelFile = path.join(dir, 'labels.idx');
  fs.writeFileSync(images, idxFile([labels.length, 28, 28], pixels));
  fs.writeFileSync(labelFile, idxFile([labels.length], labels));
  return `idx:${images},${labelFile}`;
}

function parameters(
  client: CoordinatorClient,
  status: TrialStatus__Output,
): Promise<Map<string, Float32Array>> {
  const params = modelParams(parseModelSpec('lenet5'), status.input_shape, status.num_classes);
  return client.getParameters(
    status.trial,
    params.map((p) => ({ name: p.name, size: elementCount(p.shape) })),
  );
}

const sameBytes = (a: Float32Array, b: Float32Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );

const CONV_LAYERS = ['conv0/kernel', 'conv0/bias', 'conv1/kernel', 'conv1/bias'];

test(
  'transfer: LeNet-5 pre-trained on digits 0-4, fine-tuned with frozen convolutions on 300 training examples of 5-9, beats training from scratch; its frozen layers stay byte-identical',
  { timeout: 300_000 },
  async () => {
    const dir = tempDir('transfer');
    const pretrainData = digitFiles(path.join(dir, 'digits0-4'), [0, 1, 2, 3, 4], 900);
    const fewShotData = digitFiles(path.join(dir, 'digits5-9'), [5, 6, 7, 8, 9], 100);
    await using cluster = await new LocalCluster({
      workers: 2,
      shards: 2,
      etcd: 'none',
      logDir: testOutputDir('transfer'),
    }).start();
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const run = async (spec: TrialSpec): Promise<TrialStatus__Output> => {
        const trial = await submit(client, {
          model: 'lenet5',
          mode: 'sync',
          seed: 1,
          optimizer: { kind: 'adam', lr: 1e-3 },
          ...spec,
        });
        const final = await trial.done;
        assert.equal(final.status, 'completed', `${spec.name}: ${final.error}`);
        assertExactlyOnce(final);
        return final;
      };
      const pre = await run({ name: 'pre', dataset: pretrainData, batch: 64, epochs: 5 });
      assert.equal(pre.num_classes, 5);
      const few = { dataset: fewShotData, batch: 30, epochs: 3 };
      const scratch = await run({ name: 'scratch', ...few });
      const tuned = await run({
        name: 'tuned',
        ...few,
        init_from: 'pre',
        freeze: 'conv0,conv1',
        // Keras's MNIST transfer recipe: the feature layers frozen, the classifier drawn afresh.
        reinit: 'dense0,dense1,dense2',
      });
      // Judged over the learning curve (val accuracy after 1, 2 and 3 epochs): with 100
      // validation examples one epoch's figure alone moves by a few points between seeds.
      const curve = (s: TrialStatus__Output) => s.history.map((e) => e.val_accuracy);
      const mean = (s: TrialStatus__Output) => curve(s).reduce((a, b) => a + b, 0) / 3;
      assert.ok(
        mean(tuned) > mean(scratch),
        `fine-tuned ${curve(tuned).join(' ')} vs from scratch ${curve(scratch).join(' ')}`,
      );
      assert.equal(
        tuned.frozen_params,
        6 * 25 + 6 + 16 * 6 * 25 + 16,
        'the convolutions are frozen',
      );

      const [preValues, tunedValues] = await Promise.all([
        parameters(client, pre),
        parameters(client, tuned),
      ]);
      for (const name of CONV_LAYERS)
        assert.ok(sameBytes(tunedValues.get(name)!, preValues.get(name)!), `${name} changed`);
      assert.ok(
        !sameBytes(tunedValues.get('dense0/kernel')!, preValues.get('dense0/kernel')!),
        'the layers that are not frozen trained',
      );

      // The same start from the pre-trained model exported to disk, from the CLI.
      const exported = path.join(dir, 'pre-export');
      await exportLayersModel(
        exported,
        parseModelSpec('lenet5'),
        pre.input_shape,
        pre.num_classes,
        preValues,
      );
      const cli = await runCaviar(
        [
          'train',
          '--coordinator',
          cluster.coordinator,
          '--name',
          'from-export',
          '--dataset',
          fewShotData,
          '--model',
          'lenet5',
          '--epochs',
          '1',
          '--batch',
          '30',
          '--init-from',
          exported,
          '--freeze',
          '2',
          '--reinit',
          'dense2',
          '--json',
        ],
        { timeoutMs: 120_000 },
      );
      assert.equal(cli.code, 0, cli.stderr);
      const fromExport = await parameters(client, await client.getTrial('from-export'));
      for (const name of CONV_LAYERS)
        assert.ok(sameBytes(fromExport.get(name)!, preValues.get(name)!), `${name} changed`);

      const missingHead = await runCaviar(
        [
          'train',
          '--coordinator',
          cluster.coordinator,
          '--dataset',
          fewShotData,
          '--model',
          'lenet5',
          '--init-from',
          'pre',
        ],
        { timeoutMs: 60_000 },
      );
      assert.equal(missingHead.code, 2, missingHead.stderr);
      assert.match(missingHead.stderr, /dense2\/kernel is \[84, 5\] there and \[84, 10\] here/);
      assert.match(missingHead.stderr, /--reinit \(dense2\)/);
      assert.equal(missingHead.stderr.trim().split('\n').length, 1, missingHead.stderr);
    } finally {
      client.close();
    }
  },
);
