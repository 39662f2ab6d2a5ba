import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TrialSpec } from '../../proto/gen/caviar/v1/TrialSpec';
import { CoordinatorClient } from '../../core/coordinator-client';
import {
  assertExactlyOnce,
  progress,
  reportRecovery,
  sleep,
  startCluster,
  submit,
} from '../helpers/cluster';

const SPEC: TrialSpec = { dataset: 'mnist', model: 'mlp:64', batch: 64, epochs: 3, mode: 'async' };

test(
  'etcd stopped for several seconds and started again: members re-register, training goes on exactly once',
  { timeout: 180_000 },
  async (t) => {
    await using cluster = await startCluster('etcd-restart', { workers: 2, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, SPEC);
      await trial.until((s) => progress(s) >= 20);
      await cluster.etcdServer!.stop();
      await sleep(4_000);
      const restarted = Date.now();
      const at = progress(await client.getTrial(trial.id));
      await cluster.etcdServer!.start();
      const recovery = reportRecovery(t, trial, at, restarted);
      const status = await trial.done;
      await recovery;
      assertExactlyOnce(status);
      const roles = (await client.clusterInfo()).members.map((m) => m.role).sort();
      assert.deepEqual(
        roles,
        ['coordinator', 'ps', 'ps', 'worker', 'worker'],
        'everyone is registered again',
      );
    } finally {
      client.close();
    }
  },
);

test(
  'a worker killed while etcd is down is noticed once etcd is back, and its batches go to the other',
  { timeout: 180_000 },
  async () => {
    await using cluster = await startCluster('etcd-down-kill', { workers: 2, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, SPEC);
      await trial.until((s) => progress(s) >= 20);
      await cluster.etcdServer!.stop();
      await cluster.signal('worker-1', 'SIGKILL');
      await sleep(3_000);
      await cluster.etcdServer!.start();
      const status = await trial.done;
      assertExactlyOnce(status);
      const workers = (await client.clusterInfo()).members
        .filter((m) => m.role === 'worker')
        .map((m) => m.id);
      assert.deepEqual(workers, ['worker-0'], 'the dead worker left the membership');
    } finally {
      client.close();
    }
  },
);
