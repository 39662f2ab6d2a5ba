import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status as grpcStatus } from '@grpc/grpc-js';
import { CoordinatorClient } from '../../core/coordinator-client';
import { assertExactlyOnce, faultTrial, sleep, startCluster, submit } from '../helpers/cluster';
import { runCaviar } from '../helpers/repo';

test(
  'a trial submitted while a shard is down waits for it to come back, then runs exactly once',
  { timeout: 120_000 },
  async () => {
    await using cluster = await startCluster('submit-shard-down', { workers: 2, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      await cluster.signal('ps-1', 'SIGKILL');
      const submitted = submit(client, faultTrial('sync'));
      await sleep(2_000);
      await cluster.restart('ps-1');
      const trial = await submitted;
      assertExactlyOnce(await trial.done);
    } finally {
      client.close();
    }
  },
);

test(
  'a trial submitted while a shard stays down fails with one line naming the shard and what to do',
  { timeout: 120_000 },
  async () => {
    await using cluster = await startCluster('submit-shard-gone', { workers: 1, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      await cluster.signal('ps-1', 'SIGKILL');
      const address = cluster.process('ps-1').address;
      const line = new RegExp(
        `shard ${address.replace(/\./g, '\\.')} did not answer for 15 s, so the trial was not started: submit it again once the shard is back`,
      );
      await assert.rejects(
        client.submitTrial(faultTrial('async')),
        (err: { code?: number; details?: string }) =>
          err.code === grpcStatus.UNAVAILABLE && line.test(err.details ?? ''),
      );
      const cli = await runCaviar(
        ['train', '--coordinator', cluster.coordinator, '--dataset', 'mnist', '--epochs', '1'],
        { timeoutMs: 60_000 },
      );
      assert.equal(cli.code, 1, cli.stderr);
      assert.deepEqual(cli.stderr.trim().split('\n').length, 1, cli.stderr);
      assert.match(cli.stderr, line);
      assert.doesNotMatch(cli.stderr, /ECONNREFUSED|No connection established/);
      assert.equal((await client.listTrials()).length, 0, 'nothing was stored');
    } finally {
      client.close();
    }
  },
);
