import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinatorClient } from '../../core/coordinator-client';
import { etcdAvailable } from '../../core/etcd-server';
import {
  waitForStop,
  assertExactlyOnce,
  faultTrial,
  progress,
  reportRecovery,
  sleep,
  startCluster,
  submit,
} from '../helpers/cluster';

const TRIAL = faultTrial('async');

assert.ok(
  etcdAvailable(),
  'fault tests need etcd: `npm test` installs Debian etcd-server (test/setup.sh)',
);

test(
  'SIGKILL a worker mid-training: its batches go to the others, nothing lost or doubled',
  { timeout: 120_000 },
  async (t) => {
    await using cluster = await startCluster('kill-worker', { workers: 3 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, TRIAL);
      const seen = await trial.until((s) => progress(s) >= 20);
      const killed = Date.now();
      await cluster.signal('worker-0', 'SIGKILL');
      const recovery = reportRecovery(t, trial, progress(seen), killed);
      const status = await trial.done;
      await recovery;
      assertExactlyOnce(status);
    } finally {
      client.close();
    }
  },
);

test(
  'SIGKILL one of two workers in sync mode: the survivor runs both halves of each step, nothing lost or doubled',
  { timeout: 120_000 },
  async (t) => {
    await using cluster = await startCluster('kill-worker-sync', { workers: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, faultTrial('sync'));
      const seen = await trial.until((s) => progress(s) >= 20);
      const killed = Date.now();
      await cluster.signal('worker-0', 'SIGKILL');
      const recovery = reportRecovery(t, trial, progress(seen), killed);
      const status = await trial.done;
      await recovery;
      assertExactlyOnce(status);
    } finally {
      client.close();
    }
  },
);

test(
  'a worker killed after its push, before its report: the re-run is deduplicated',
  { timeout: 120_000 },
  async () => {
    await using cluster = await startCluster('kill-mid-push', { workers: 2 });
    await cluster.signal('worker-0', 'SIGKILL');
    await cluster.restart('worker-0', { CAVIAR_FAULT: 'exit-after-push:6' });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, TRIAL);
      const status = await trial.done;
      assertExactlyOnce(status);
      assert.ok(status.batches_requeued >= 1, "the dead worker's batch was handed out again");
      assert.ok((status.pushes_refused.duplicate ?? 0) >= 1, 'and its second push was a duplicate');
    } finally {
      client.close();
    }
  },
);

test(
  'SIGKILL two workers, one of them restarted: the trial completes exactly once',
  { timeout: 120_000 },
  async () => {
    await using cluster = await startCluster('kill-two-workers', { workers: 3 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, TRIAL);
      await trial.until((s) => progress(s) >= 15);
      await Promise.all([
        cluster.signal('worker-0', 'SIGKILL'),
        cluster.signal('worker-1', 'SIGKILL'),
      ]);
      await trial.until((s) => progress(s) >= 60);
      await cluster.restart('worker-0');
      const status = await trial.done;
      assertExactlyOnce(status);
    } finally {
      client.close();
    }
  },
);

test(
  'a worker paused past its lease TTL is fenced: its late push is refused, applied 0 times',
  { timeout: 120_000 },
  async () => {
    await using cluster = await startCluster('zombie', { workers: 2 });
    // worker-0 comes back with a fail point: it stops itself right before its 5th push, token in hand.
    await cluster.signal('worker-0', 'SIGKILL');
    await cluster.restart('worker-0', { CAVIAR_FAULT: 'stop-before-push:5' });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      // Long enough that the trial still runs when the zombie wakes.
      const trial = await submit(client, { ...TRIAL, epochs: 8 });
      const zombie = cluster.process('worker-0').child;
      await waitForStop(zombie.pid!);
      // Wake it as soon as its lease has ended (TTL 2 s) and the cluster saw it go, while the
      // trial still runs, so its late push meets the shards' fence.
      for (let i = 0; i < 300; i++) {
        const members = (await client.clusterInfo()).members;
        if (!members.some((m) => m.role === 'worker' && m.id === 'worker-0')) break;
        await sleep(50);
      }
      await sleep(300);
      zombie.kill('SIGCONT');
      const status = await trial.done;
      assertExactlyOnce(status);
      assert.ok(
        (status.pushes_refused.fenced ?? 0) >= 1,
        `the late push was fenced: ${JSON.stringify(status.pushes_refused)}`,
      );
    } finally {
      client.close();
    }
  },
);

test('a worker paused for half its TTL is not evicted', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster('short-pause', { workers: 2, memberTtl: 4 });
  const client = new CoordinatorClient(cluster.coordinator);
  try {
    const trial = await submit(client, TRIAL);
    await trial.until((s) => progress(s) >= 20);
    const before = await client.clusterInfo();
    await cluster.signal('worker-1', 'SIGSTOP');
    await sleep(1_500);
    await cluster.signal('worker-1', 'SIGCONT');
    const status = await trial.done;
    assertExactlyOnce(status);
    assert.equal(status.batches_requeued, 0, 'no batch was taken away from the paused worker');
    assert.equal(status.pushes_refused.fenced ?? 0, 0);
    const after = await client.clusterInfo();
    const ids = (s: typeof before) =>
      s.members
        .filter((m) => m.role === 'worker')
        .map((m) => m.id)
        .sort();
    assert.deepEqual(ids(after), ids(before), 'the paused worker is still a member');
  } finally {
    client.close();
  }
});

test(
  'a lost push reply is retried with the same key and applied once',
  { timeout: 120_000 },
  async () => {
    await using cluster = await startCluster('lost-ack', {
      workers: 2,
      env: { CAVIAR_FAULT: 'drop-push-reply:7' },
    });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, TRIAL);
      const status = await trial.done;
      assertExactlyOnce(status);
      assert.ok(
        (status.pushes_refused.duplicate ?? 0) >= 1,
        `the retry was answered as a duplicate: ${JSON.stringify(status.pushes_refused)}`,
      );
    } finally {
      client.close();
    }
  },
);
