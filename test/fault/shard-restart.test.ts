import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinatorClient } from '../../core/coordinator-client';
import type { TrialStatus__Output } from '../../proto/gen/caviar/v1/TrialStatus';
import {
  assertExactlyOnce,
  faultTrial,
  killAndRestart,
  progress,
  startCluster,
  submit,
} from '../helpers/cluster';

/** Where in a trial a shard dies: each leaves the restored shard behind in another way. */
const KILL_POINTS: Array<{ name: string; when: (s: TrialStatus__Output) => boolean }> = [
  // Before the first checkpoint after Init: the shard comes back with none of the batches.
  { name: 'early (first steps)', when: (s) => progress(s) >= 4 },
  { name: 'mid-epoch', when: (s) => progress(s) >= 40 },
  // Around the first epoch's last steps, its check and snapshot.
  { name: "at an epoch's end", when: (s) => progress(s) >= s.batches_per_epoch - 4 },
];

for (const mode of ['async', 'sync'] as const) {
  for (const point of KILL_POINTS) {
    test(
      `${mode}: SIGKILL a shard ${point.name} and restart it: it restores its checkpoint, the batches it lacks run again (sync: their steps in order), every batch applied once`,
      { timeout: 120_000 },
      async (t) => {
        await using cluster = await startCluster(`kill-shard-${mode}`, { workers: 2, shards: 2 });
        const client = new CoordinatorClient(cluster.coordinator);
        try {
          const trial = await submit(client, faultTrial(mode));
          const seen = await trial.until(point.when);
          assert.equal(seen.status, 'running', 'the shard dies while the trial trains');
          const { recovered } = await killAndRestart(t, cluster, trial, 'ps-1', seen, 1_000);
          const status = await trial.done;
          await recovered;
          assertExactlyOnce(status);
          assert.ok((status.history.at(-1)?.val_accuracy ?? 0) > 0.8, 'and it still learns');
        } finally {
          client.close();
        }
      },
    );
  }
}

test(
  'sync: a shard that acknowledged a push and lost it (as one restored from an older checkpoint) gets the batch again; the step does not wait for ever',
  { timeout: 120_000 },
  async () => {
    await using cluster = await startCluster('sync-lost-push', {
      workers: 2,
      shards: 2,
      // One batch a lease: the lost batch's lease completes, as when its shard died after it.
      batchesPerLease: 1,
    });
    await cluster.signal('ps-1', 'SIGKILL');
    await cluster.restart('ps-1', { CAVIAR_FAULT: 'forget-push:30' });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, faultTrial('sync'));
      const status = await trial.done;
      assertExactlyOnce(status);
      assert.ok(status.batches_requeued >= 1, 'the lost batch was handed out again');
    } finally {
      client.close();
    }
  },
);
