import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError } from '../../core/errors';
import { exportLayersModel, loadExportedModel, readExportedTensors } from '../../core/export-model';
import { buildLayersModel, setModelParameters } from '../../core/layers-model';
import {
  formatModelSpec,
  initialParameters,
  modelParams,
  parameterCount,
  parseModelSpec,
  type ModelSpec,
} from '../../core/model-spec';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-export-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Parameters with non-zero biases too, so a bias lost on the way would show. */
function someParams(
  spec: ModelSpec,
  inputShape: number[],
  classes: number,
): Map<string, Float32Array> {
  const params = initialParameters(modelParams(spec, inputShape, classes), 11);
  for (const [name, values] of params)
    if (name.endsWith('/bias')) values.forEach((_, i) => (values[i] = 0.01 * (i + 1)));
    else if (name.endsWith('/moving_mean')) values.fill(0.1);
    else if (name.endsWith('/moving_variance')) values.fill(2);
  return params;
}

describe('exportLayersModel', () => {
  for (const [spec, inputShape] of [
    [{ type: 'mlp', hidden: [8, 6] }, [5]],
    [{ type: 'lenet5' }, [28, 28, 1]],
    [parseModelSpec('resnet:1'), [28, 28, 1]],
  ] as Array<[ModelSpec, number[]]>) {
    it(`round-trips ${formatModelSpec(spec)} weights (BatchNorm's moving statistics too) and predictions`, async () => {
      const dir = path.join(tmp, formatModelSpec(spec).replace(/\W/g, '_'));
      const params = someParams(spec, inputShape, 3);
      await exportLayersModel(dir, spec, inputShape, 3, params);

      const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      assert.equal(json.format, 'layers-model');
      assert.deepEqual(json.weightsManifest[0].paths, ['./weights.bin']);
      assert.ok(json.modelTopology);
      const count = parameterCount(modelParams(spec, inputShape, 3));
      assert.equal(fs.statSync(path.join(dir, 'weights.bin')).size, count * 4);

      const loaded = await loadExportedModel(dir);
      assert.equal(loaded.weights.length, params.size);
      for (const w of loaded.weights) {
        assert.deepEqual(w.read().dataSync(), params.get(w.originalName), w.originalName);
      }
      const reference = buildLayersModel(spec, inputShape, 3);
      setModelParameters(reference, params);
      const x = tf.randomNormal([4, ...inputShape], 0, 1, 'float32', 1);
      const expected = (reference.predict(x) as tf.Tensor).dataSync();
      const actual = (loaded.predict(x) as tf.Tensor).dataSync();
      assert.deepEqual(actual, expected);
      assert.ok(expected.some((v) => v !== 0));
      tf.dispose(x);
      reference.dispose();
      loaded.dispose();
    });
  }

  it('reads back every tensor of an export by name and shape without building the model (what --init-from DIR takes)', async () => {
    const spec = parseModelSpec('resnet:1');
    const dir = path.join(tmp, 'tensors');
    const params = someParams(spec, [28, 28, 1], 3);
    await exportLayersModel(dir, spec, [28, 28, 1], 3, params);
    const tensors = await readExportedTensors(dir);
    assert.deepEqual([...tensors.keys()].sort(), [...params.keys()].sort());
    for (const p of modelParams(spec, [28, 28, 1], 3)) {
      assert.deepEqual(tensors.get(p.name)?.shape, p.shape, p.name);
      assert.deepEqual(tensors.get(p.name)?.values, params.get(p.name), p.name);
    }
    fs.truncateSync(path.join(dir, 'weights.bin'), 100);
    await assert.rejects(readExportedTensors(dir), /its weights files end before weight/);
  });

  it("is read by tfjs's own loader over HTTP, which resolves the manifest's paths itself", async () => {
    const spec: ModelSpec = { type: 'mlp', hidden: [8] };
    const dir = path.join(tmp, 'served');
    const params = someParams(spec, [5], 3);
    await exportLayersModel(dir, spec, [5], 3, params);
    const server = http.createServer((req, res) => {
      const file = path.join(dir, path.basename(req.url ?? ''));
      if (!fs.existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200).end(fs.readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const model = await tfl.loadLayersModel(`http://127.0.0.1:${port}/model.json`);
      const kernel = model.trainableWeights.find((w) => w.originalName === 'dense0/kernel');
      assert.deepEqual(kernel?.read().dataSync(), params.get('dense0/kernel'));
      model.dispose();
    } finally {
      server.close();
    }
  });

  it('rejects parameters that do not fit the model', async () => {
    const spec: ModelSpec = { type: 'mlp', hidden: [4] };
    const params = someParams(spec, [5], 3);
    params.delete('dense1/bias');
    await assert.rejects(
      exportLayersModel(path.join(tmp, 'bad'), spec, [5], 3, params),
      InvalidArgumentError,
    );
  });

  it('names the problem when there is no exported model', async () => {
    await assert.rejects(loadExportedModel(path.join(tmp, 'absent')), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError);
      assert.match(err.message, /cannot read exported model .*absent.model\.json/);
      return true;
    });
  });
});
