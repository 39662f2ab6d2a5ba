import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TrialStatus__Output } from '../../proto/gen/caviar/v1/TrialStatus';
import { CoordinatorClient } from '../../core/coordinator-client';
import { isRetryable } from '../../core/call-status';
import {
  assertExactlyOnce,
  faultTrial,
  progress,
  sleep,
  startCluster,
  submit,
} from '../helpers/cluster';

const TERMINAL = new Set(['completed', 'failed', 'stopped']);

/** Polls the trial on `client` until it ends; a coordinator not serving yet is waited for. */
async function finished(client: CoordinatorClient, trial: string): Promise<TrialStatus__Output> {
  for (;;) {
    try {
      const status = await client.getTrial(trial);
      if (TERMINAL.has(status.status)) return status;
    } catch (err) {
      if (!isRetryable(err)) throw err;
    }
    await sleep(500);
  }
}

test(
  'SIGKILL the coordinator with a standby at another address: the standby takes over, the workers follow it through etcd, nothing lost or doubled',
  { timeout: 150_000 },
  async () => {
    await using cluster = await startCluster('standby-coordinator', { workers: 2, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    let standbyClient: CoordinatorClient | undefined;
    try {
      const trial = await submit(client, faultTrial('async'));
      await trial.until((s) => progress(s) >= 30);
      // This watch is on the coordinator about to die; the standby is asked directly below.
      trial.done.catch(() => undefined);
      // The same coordinator on a port of its own: it campaigns in etcd and waits.
      const args = [...cluster.process('coordinator').args];
      args[args.indexOf('--port') + 1] = '0';
      const standby = cluster.spawnRole('coordinator', 'coordinator-standby', args);
      await sleep(500);
      await cluster.signal('coordinator', 'SIGKILL');
      const leader = await standby;
      assert.notEqual(leader.address, cluster.coordinator, 'the standby serves elsewhere');
      standbyClient = new CoordinatorClient(leader.address);
      const status = await finished(standbyClient, trial.id);
      assertExactlyOnce(status);
      assert.ok((status.history.at(-1)?.val_accuracy ?? 0) > 0.8, 'and it still learns');
    } finally {
      client.close();
      standbyClient?.close();
    }
  },
);
