import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../core/log';
import { InvalidArgumentError } from '../../core/errors';
import * as path from 'node:path';
import {
  initialParameters,
  modelParams,
  parameterCount,
  parseModelSpec,
  type ModelSpec,
} from '../../core/model-spec';
import { REPO_ROOT } from '../helpers/repo';
import { nativeAddonAvailable } from '../../core/native/addon';
import { ComputeThread, startComputeService } from '../../worker/compute-thread';
import { selectBackend } from '../../worker/select-backend';
import {
  allocateFor,
  allocateLabelsFor,
  inlineService,
  type ComputeService,
  type TrialCompute,
} from '../../worker/trial-compute';

/** blas where the addon is built (what workers use), else tfjs's cpu backend. */
const BACKEND = nativeAddonAvailable() ? 'blas' : 'cpu';
const INPUTS = 784;
const CLASSES = 10;

const threadData = { threads: 1, logName: 'test', logBindings: {} };
const threadOptions = { ...threadData, log: createLogger('test', {}) };

/** A batch of `count` examples with fixed pseudo-random features, in arrays `model` reads. */
function batch(model: TrialCompute, count: number) {
  const features = allocateFor(model, count * INPUTS);
  for (let i = 0; i < features.length; i++) features[i] = ((i * 7919) % 1000) / 1000;
  const labels = allocateLabelsFor(model, count);
  for (let i = 0; i < count; i++) labels[i] = i % CLASSES;
  return { features, labels };
}

/** The model's seeded initial values, in arrays `model` reads. */
function valuesFor(
  model: TrialCompute,
  spec: ModelSpec,
  shape: readonly number[] = [INPUTS],
): Map<string, Float32Array> {
  const init = initialParameters(modelParams(spec, shape, CLASSES), 7);
  return new Map(
    [...init].map(([name, v]) => {
      const into = allocateFor(model, v.length);
      into.set(v);
      return [name, into];
    }),
  );
}

/** The longest gap between 5 ms ticks of this thread's event loop while `work` runs. */
async function longestStall(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(ticker);
  }
  return Math.max(longest, performance.now() - last);
}

describe('compute thread', () => {
  let thread: ComputeThread;
  let inline: ComputeService;

  before(async () => {
    thread = await ComputeThread.start({ ...threadData, choice: BACKEND });
    inline = inlineService(await selectBackend(BACKEND));
  });
  after(() => thread.close());

  it('computes the same loss, gradients, evaluation as the model on this thread', async () => {
    // An MLP, and a layer graph with BatchNorm (its statistics come back with the gradients)
    // and dropout (masks drawn from the batch's key on either thread).
    const cases: Array<{ spec: ModelSpec; shape: number[] }> = [
      { spec: { type: 'mlp', hidden: [32] }, shape: [INPUTS] },
      {
        spec: parseModelSpec(path.join(REPO_ROOT, 'examples/models/resnet-mnist.json')),
        shape: [28, 28, 1],
      },
    ];
    for (const { spec, shape } of cases) {
      const results = [];
      for (const service of [thread, inline]) {
        const model = await service.createModel(spec, shape, CLASSES, new Set());
        assert.equal(model.threaded, service === thread);
        const { features, labels } = batch(model, 64);
        const data = { features, labels, count: 64 };
        const values = valuesFor(model, spec, shape);
        const grads = await model.gradients(features, labels, 64, 'k', values);
        results.push({ grads, evaluation: await model.evaluate(data, 48) });
        const p95 = await model.predictLatencyP95(data);
        assert.ok(p95 > 0 && p95 < 1_000, `predict p95 ${p95} ms`);
        model.dispose();
      }
      const [threaded, here] = results;
      assert.equal(threaded.grads.loss, here.grads.loss);
      assert.deepEqual([...threaded.grads.grads.keys()], [...here.grads.grads.keys()]);
      for (const [name, g] of threaded.grads.grads)
        assert.deepEqual(g, here.grads.grads.get(name), name);
      assert.deepEqual(threaded.evaluation, here.evaluation);
      assert.equal(threaded.evaluation.examples, 48);
    }
  });

  it('rejects a bad batch with the model error, and keeps serving', async () => {
    const spec: ModelSpec = { type: 'mlp', hidden: [8] };
    const model = await thread.createModel(spec, [INPUTS], CLASSES, new Set());
    const { features, labels } = batch(model, 4);
    labels[2] = CLASSES;
    await assert.rejects(
      model.gradients(features, labels, 4, 'k', valuesFor(model, spec)),
      (err: unknown) =>
        err instanceof InvalidArgumentError &&
        /label 10 of example 2 is not a class/.test(err.message),
    );
    labels[2] = 1;
    const { loss } = await model.gradients(features, labels, 4, 'k');
    assert.ok(Number.isFinite(loss));
    model.dispose();
  });

  it("keeps the main thread's event loop free while a large batch computes", async (t) => {
    const spec: ModelSpec = { type: 'mlp', hidden: [2048] };
    const count = 2048;
    const stalls = [];
    for (const service of [inline, thread]) {
      const model = await service.createModel(spec, [INPUTS], CLASSES, new Set());
      const { features, labels } = batch(model, count);
      const values = valuesFor(model, spec);
      await model.gradients(features, labels, count, 'warm-up', values);
      const started = performance.now();
      const stall = await longestStall(async () => {
        for (let i = 0; i < 3; i++) await model.gradients(features, labels, count, `b${i}`);
      });
      stalls.push({ stall, batchMs: (performance.now() - started) / 3 });
      model.dispose();
    }
    const [here, threaded] = stalls;
    t.diagnostic(
      `batch ${here.batchMs.toFixed(0)} ms; longest stall ${here.stall.toFixed(0)} ms here, ${threaded.stall.toFixed(0)} ms threaded`,
    );
    // The test could fail: on this thread a batch holds the loop for all of its compute.
    assert.ok(here.stall >= 0.8 * here.batchMs, `inline: ${JSON.stringify(here)}`);
    assert.ok(
      threaded.stall < here.batchMs / 2,
      `threaded stall ${threaded.stall.toFixed(0)} ms, a batch ${here.batchMs.toFixed(0)} ms`,
    );
  });

  it('rejects calls in flight and after it is closed', async () => {
    const other = await ComputeThread.start({ ...threadData, choice: BACKEND });
    const spec: ModelSpec = { type: 'mlp', hidden: [1024] };
    const model = await other.createModel(spec, [INPUTS], CLASSES, new Set());
    const { features, labels } = batch(model, 1024);
    const inFlight = assert.rejects(
      model.gradients(features, labels, 1024, 'k', valuesFor(model, spec)),
      /the compute thread is closed/,
    );
    await other.close();
    await inFlight;
    await assert.rejects(model.gradients(features, labels, 1024, 'k'), /closed/);
  });
});

describe('startComputeService', () => {
  it('auto: models of a million parameters and more on the thread, smaller ones here', async () => {
    const service = await startComputeService(BACKEND, { ...threadOptions, thread: 'auto' });
    try {
      const small = await service.createModel(
        { type: 'mlp', hidden: [64] },
        [INPUTS],
        10,
        new Set(),
      );
      const large = await service.createModel(
        { type: 'mlp', hidden: [1300] },
        [INPUTS],
        10,
        new Set(),
      );
      const size = (hidden: number): number =>
        parameterCount(modelParams({ type: 'mlp', hidden: [hidden] }, [INPUTS], 10));
      assert.ok(size(64) < 1_000_000 && size(1300) >= 1_000_000);
      assert.equal(small.threaded, false);
      assert.equal(large.threaded, true);
      assert.equal(service.name, BACKEND);
    } finally {
      await service.close();
    }
  });

  it('off keeps every model here; the synthetic backend never takes a thread', async () => {
    for (const [choice, thread] of [
      [BACKEND, 'off'],
      ['synthetic', 'on'],
    ] as const) {
      const service = await startComputeService(choice, { ...threadOptions, thread });
      const model = await service.createModel(
        { type: 'mlp', hidden: [1300] },
        [INPUTS],
        10,
        new Set(),
      );
      assert.equal(model.threaded, false, `${choice} ${thread}`);
      await service.close();
    }
  });
});
