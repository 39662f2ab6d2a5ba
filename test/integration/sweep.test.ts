import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrialSpec } from '../../proto/gen/caviar/v1/TrialSpec';
import { LocalCluster } from '../../client/local-cluster';
import { CoordinatorClient } from '../../core/coordinator-client';
import { ParameterServerClient } from '../../core/ps-client';
import { modelParams, parseModelSpec } from '../../core/model-spec';
import { elementCount } from '../../core/placement';
import type { SweepSummary } from '../../client/sweep-summary';
import { lastJsonLine, runCaviar, tempDir, testOutputDir } from '../helpers/repo';
import { submit } from '../helpers/cluster';

test('a sweep spec error is one line naming file, line and field, exit code 2', async () => {
  const dir = tempDir('bad-sweep');
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(
    file,
    'name: x\ndataset: { source: mnist }\nmodel: { type: mlp, hidden: [16] }\nsearch:\n  lr: { log_uniform: [0.1, 0.001] }\nbudget: { trials: 2 }\n',
  );
  const result = await runCaviar(['sweep', file], { timeoutMs: 60_000 });
  assert.equal(result.code, 2, result.stderr);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0], /bad\.yaml:5:\d+: search\.lr/);
});

test(
  'a coarse-to-fine sweep with early stopping: the winner meets the constraints, stopped trials free their shards',
  { timeout: 240_000 },
  async () => {
    const dir = tempDir('sweep');
    const file = path.join(dir, 'spirals.yaml');
    fs.writeFileSync(
      file,
      [
        'name: spirals',
        'dataset: { source: synthetic, name: spirals }',
        'model: { type: mlp, hidden: [16] }',
        'train: { optimizer: adam, batch: 32, epochs: 6, mode: async }',
        'search:',
        '  lr: { log_uniform: [1.0e-5, 1.0e-1] }',
        '  hidden: { choice: [[8], [32]] }',
        'budget: { trials: 4, parallel: 2, seed: 3 }',
        'refine: { rounds: 1, top: 2, trials: 2 }',
        'objective: { maximize: val_accuracy, subject_to: ["params < 2000", "predict_ms_p95 < 1000"] }',
        'early_stopping: { patience: 1 }',
        'human_error: 0.02',
      ].join('\n'),
    );
    const result = await runCaviar(
      ['sweep', file, '--workers', '2', '--shards', '2', '--etcd', 'none', '--json'],
      { timeoutMs: 230_000 },
    );
    assert.equal(result.code, 0, result.stderr);
    const summary = lastJsonLine<SweepSummary>(result.stdout);
    assert.equal(summary.status, 'completed');
    assert.equal(summary.trials.length, 6, '4 coarse trials and 2 refined ones');
    assert.deepEqual([...new Set(summary.trials.map((t) => t.round))].sort(), [0, 1]);
    assert.ok(summary.best, 'a winner');
    assert.ok(summary.best.params < 2000, 'the winner meets the constraint');
    assert.ok(
      summary.best.predict_ms_p95 > 0 && summary.best.predict_ms_p95 < 1000,
      'inference latency is measured',
    );
    for (const t of summary.trials.filter((t) => t.params < 2000 && t.val_accuracy !== null)) {
      assert.ok(
        t.val_accuracy! <= summary.best.val_accuracy! + 1e-12,
        `${t.trial} beats the winner`,
      );
    }
    for (const t of summary.trials) {
      assert.ok(t.verdict.length > 0, `${t.trial} has a verdict`);
      if (t.status === 'stopped')
        assert.ok(t.epochs < 6 && t.stop_reason, `${t.trial} stopped early with a reason`);
    }
  },
);

test(
  'two trials at once on one cluster each reach the result they reach alone (same seed, sync)',
  { timeout: 240_000 },
  async () => {
    await using cluster = await new LocalCluster({
      workers: 2,
      shards: 2,
      backend: 'cpu',
      etcd: 'none',
      logDir: testOutputDir('concurrent-trials'),
    }).start();
    const client = new CoordinatorClient(cluster.coordinator);
    const spec = (name: string, seed: number): TrialSpec => ({
      name,
      dataset: 'synthetic:spirals',
      model: 'mlp:16',
      batch: 32,
      epochs: 2,
      mode: 'sync',
      seed,
      optimizer: { kind: 'adam', lr: 0.01 },
    });
    const params = async (trial: string) => {
      const status = await client.getTrial(trial);
      const shapes = modelParams(parseModelSpec('mlp:16'), status.input_shape, status.num_classes);
      return client.getParameters(
        trial,
        shapes.map((p) => ({ name: p.name, size: elementCount(p.shape) })),
      );
    };
    try {
      const alone = await (await submit(client, spec('alone', 5))).done;
      assert.equal(alone.status, 'completed');
      const [together, other] = await Promise.all([
        submit(client, spec('together', 5)),
        submit(client, spec('other', 9)),
      ]);
      const [a, b] = await Promise.all([together.done, other.done]);
      assert.equal(a.status, 'completed');
      assert.equal(b.status, 'completed');
      const [p1, p2] = await Promise.all([params('alone'), params('together')]);
      for (const [name, values] of p1) {
        const maxDiff = values.reduce((m, v, i) => Math.max(m, Math.abs(v - p2.get(name)![i])), 0);
        assert.ok(
          maxDiff <= 1e-6,
          `${name} differs by ${maxDiff} when the trial shares the cluster`,
        );
      }
      // Ended trials free their shard memory at once.
      const shard = new ParameterServerClient(cluster.process('ps-0').address);
      try {
        for (const trial of ['alone', 'together', 'other'])
          assert.equal((await shard.stats(trial)).held, false);
      } finally {
        shard.close();
      }
    } finally {
      client.close();
    }
  },
);

test(
  "a sweep over a layer graph's structure: each trial trains the graph its placeholders make, and params constraints read it",
  { timeout: 240_000 },
  async () => {
    const dir = tempDir('structure-sweep');
    const file = path.join(dir, 'structure.yaml');
    fs.writeFileSync(
      file,
      [
        'name: structure',
        'dataset: { source: synthetic, name: spirals }',
        'model:',
        '  type: graph',
        '  layers:',
        '    - { type: dense, units: $width, activation: linear }',
        '    - { type: batch_norm }',
        '    - { type: activation, activation: tanh }',
        '    - { type: dropout, rate: $dropout }',
        '  defaults: { dropout: 0.1 }',
        'train: { optimizer: adam, lr: 0.01, batch: 32, epochs: 3, mode: async }',
        'search:',
        '  width: { choice: [4, 64] }',
        'budget: { trials: 3, parallel: 3, seed: 3 }',
        'objective: { maximize: val_accuracy, subject_to: ["params < 100"] }',
      ].join('\n'),
    );
    const result = await runCaviar(
      ['sweep', file, '--workers', '2', '--shards', '2', '--etcd', 'none', '--json'],
      { timeoutMs: 230_000 },
    );
    assert.equal(result.code, 0, result.stderr);
    const summary = lastJsonLine<SweepSummary>(result.stdout);
    assert.equal(summary.status, 'completed');
    assert.equal(summary.trials.length, 3);
    // Trainable parameters only: dense (2 features), BatchNorm's gamma and beta, the appended
    // linear head over the 3 spiral arms.
    const count = (w: number) => 2 * w + w + 2 * w + w * 3 + 3;
    for (const t of summary.trials) {
      assert.equal(t.status, 'completed', `${t.trial}: ${JSON.stringify(t)}`);
      assert.equal(t.params, count(t.hyper.width as number), `${t.trial} trained its own width`);
    }
    assert.ok(
      summary.trials.some((t) => t.hyper.width === 64),
      'the seed draws the wide model at least once',
    );
    assert.ok(summary.best, 'a winner');
    assert.equal(summary.best.hyper.width, 4, 'only the narrow model meets params < 100');
  },
);
