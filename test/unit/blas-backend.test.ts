import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadSplits } from '../../core/datasets';
import { initialParameters, modelParams, type ModelSpec } from '../../core/model-spec';
import { NATIVE_ADDON_ENV, nativeAddonAvailable, loadBlasAddon } from '../../core/native/addon';
import { selectBackend } from '../../worker/select-backend';
import { relativeError } from '../helpers/numeric';

const skip = nativeAddonAvailable()
  ? false
  : 'the native addon is not built (npm run build:native)';

/** A logger whose JSON lines land in `lines`. */
function capturingLogger(lines: Array<Record<string, unknown>>): pino.Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: 'debug' }, sink);
}

describe('blas compute backend', { skip }, () => {
  after(() => loadBlasAddon(1));

  for (const [spec, batch] of [
    [{ type: 'mlp', hidden: [256] }, 128],
    [{ type: 'lenet5' }, 32],
  ] as Array<[ModelSpec, number]>) {
    it(`gives tfjs cpu's ${spec.type} training-step gradients (1e-4 relative)`, async () => {
      const mnist = await loadSplits('mnist');
      const shape = mnist.train.featureShape;
      const params = initialParameters(modelParams(spec, shape, 10), 11);
      const [cpu, blas] = await Promise.all(
        ['cpu', 'blas'].map((b) => selectBackend(b as 'cpu' | 'blas')),
      ).then((backends) =>
        backends.map((backend) => {
          const model = backend.createModel(spec, shape, 10);
          model.setParameters(params);
          const result = model.gradients(mnist.train.features, mnist.train.labels, batch);
          model.dispose();
          return result;
        }),
      );
      assert.ok(Math.abs(cpu.loss - blas.loss) <= 1e-4 * cpu.loss, `${cpu.loss} vs ${blas.loss}`);
      for (const [name, g] of cpu.grads) {
        const err = relativeError(g, blas.grads.get(name) as Float32Array);
        assert.ok(err < 1e-4, `${name}: ${err}`);
      }
    });

    it(`evaluates the ${spec.type} as tfjs cpu does`, async () => {
      const { validation } = await loadSplits('mnist');
      const shape = validation.featureShape;
      const params = initialParameters(modelParams(spec, shape, 10), 12);
      const [cpu, blas] = await Promise.all(
        ['cpu', 'blas'].map(async (b) => {
          const model = (await selectBackend(b as 'cpu' | 'blas')).createModel(spec, shape, 10);
          model.setParameters(params);
          const result = model.evaluate(validation.features, validation.labels, 1_200);
          model.dispose();
          return result;
        }),
      );
      assert.ok(Math.abs(cpu.loss - blas.loss) <= 1e-4 * cpu.loss, `${cpu.loss} vs ${blas.loss}`);
      // An example whose two largest logits differ by rounding alone may flip: at most one here.
      assert.ok(
        Math.abs(cpu.accuracy - blas.accuracy) * 1_200 <= 1,
        `${cpu.accuracy} vs ${blas.accuracy}`,
      );
      assert.equal(blas.examples, 1_200);
    });
  }

  it('sets the BLAS thread count: 1 by default, --threads otherwise', async () => {
    await selectBackend('blas', undefined, { threads: 2 });
    assert.equal(loadBlasAddon(2).threads(), 2);
    await selectBackend('blas');
    assert.equal(loadBlasAddon().threads(), 1);
    await assert.rejects(selectBackend('blas', undefined, { threads: 0 }), /threads/);
  });

  it('is what auto picks when tfjs-node is not installed', async () => {
    assert.equal((await selectBackend('auto')).name, 'blas');
  });
});

describe('without the blas addon', () => {
  const saved = process.env[NATIVE_ADDON_ENV];
  const hide = () => {
    process.env[NATIVE_ADDON_ENV] = '/nonexistent/caviar_native.node';
  };
  const restore = () => {
    if (saved === undefined) delete process.env[NATIVE_ADDON_ENV];
    else process.env[NATIVE_ADDON_ENV] = saved;
  };

  it('auto falls back to wasm and says so once, with the reason', async () => {
    hide();
    try {
      const lines: Array<Record<string, unknown>> = [];
      const backend = await selectBackend('auto', capturingLogger(lines));
      assert.equal(backend.name, 'wasm');
      const warnings = lines.filter((l) => l.level === 40);
      assert.equal(warnings.length, 1, JSON.stringify(lines));
      assert.equal(warnings[0].backend, 'blas');
      assert.match(String(warnings[0].reason), /native addon is not built.*npm run build:native/);
    } finally {
      restore();
    }
  });

  it('an explicit --backend blas is a clear error', async () => {
    hide();
    try {
      await assert.rejects(
        selectBackend('blas'),
        /compute backend "blas" is unavailable: the native addon is not built \(looked for \/nonexistent\/caviar_native.node\)/,
      );
    } finally {
      restore();
    }
  });
});
