import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster } from '../../client/local-cluster';
import { CoordinatorClient } from '../../core/coordinator-client';
import { progress, sleep, submit } from '../helpers/cluster';
import { runCaviar, testOutputDir } from '../helpers/repo';

test(
  'panda mode from the CLI: pause, resume, tune the learning rate, stop',
  { timeout: 180_000 },
  async () => {
    await using cluster = await new LocalCluster({
      workers: 2,
      shards: 2,
      backend: 'cpu',
      etcd: 'none',
      logDir: testOutputDir('panda'),
    }).start();
    const client = new CoordinatorClient(cluster.coordinator);
    const caviar = (...args: string[]) =>
      runCaviar([...args, '--coordinator', cluster.coordinator], { timeoutMs: 30_000 });
    try {
      const trial = await submit(client, {
        name: 'panda',
        dataset: 'synthetic:spirals',
        model: 'mlp:16',
        batch: 16,
        epochs: 200,
        optimizer: { kind: 'adam', lr: 0.01 },
      });
      await trial.until((s) => s.history.length >= 1);

      const paused = await caviar('pause', 'panda');
      assert.equal(paused.code, 0, paused.stderr);
      assert.match(paused.stdout, /panda: paused/);
      await sleep(500); // tasks already out on lease finish
      const before = progress(await client.getTrial('panda'));
      await sleep(1_500);
      assert.equal(
        progress(await client.getTrial('panda')),
        before,
        'a paused trial gets no new batches',
      );

      const tuned = await caviar('tune', 'panda', '--lr', '0.002');
      assert.equal(tuned.code, 0, tuned.stderr);
      const resumed = await caviar('resume', 'panda');
      assert.equal(resumed.code, 0, resumed.stderr);
      const epochsAtTune = (await client.getTrial('panda')).history.length;
      const later = await trial.until((s) => s.history.length >= epochsAtTune + 2);
      assert.ok(progress(later) > before, 'it trains again once resumed');
      assert.equal(later.history.at(-1)?.lr, 0.002, 'epochs after the tune run at the new rate');

      const stopped = await caviar('stop', 'panda');
      assert.equal(stopped.code, 0, stopped.stderr);
      const final = await trial.done;
      assert.equal(final.status, 'stopped');
      assert.equal(final.stop_reason, 'stopped by the user');

      const bad = await caviar('tune', 'panda', '--lr', '0.1');
      assert.equal(bad.code, 1, 'an ended trial cannot be tuned');
      assert.match(bad.stderr, /has ended/);
    } finally {
      client.close();
    }
  },
);
