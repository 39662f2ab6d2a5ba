import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrialSpec } from '../../proto/gen/caviar/v1/TrialSpec';
import { CoordinatorClient } from '../../core/coordinator-client';
import { assertExactlyOnce, progress, sleep, startCluster, submit } from '../helpers/cluster';

const EPOCHS = 3;

for (const mode of ['async', 'sync'] as const) {
  test(
    `${mode}: SIGKILL a shard and restart it: it restores its checkpoint, lost batches run again`,
    { timeout: 150_000 },
    async () => {
      await using cluster = await startCluster(`kill-shard-${mode}`, { workers: 2, shards: 2 });
      const client = new CoordinatorClient(cluster.coordinator);
      const spec: TrialSpec = {
        dataset: 'mnist',
        model: 'mlp:64',
        batch: 64,
        epochs: EPOCHS,
        mode,
        optimizer: { kind: 'adam', lr: 1e-3 },
      };
      try {
        const trial = await submit(client, spec);
        await trial.until((s) => progress(s) >= 60);
        await cluster.signal('ps-1', 'SIGKILL');
        await sleep(1_000);
        await cluster.restart('ps-1');
        const status = await trial.done;
        assertExactlyOnce(status);
        assert.ok((status.history.at(-1)?.val_accuracy ?? 0) > 0.8, 'and it still learns');
      } finally {
        client.close();
      }
    },
  );
}

test(
  'a corrupt newest checkpoint is refused by its checksum and the previous one restored',
  { timeout: 150_000 },
  async () => {
    await using cluster = await startCluster('corrupt-checkpoint', { workers: 2, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, {
        dataset: 'mnist',
        model: 'mlp:64',
        batch: 64,
        epochs: EPOCHS,
        mode: 'async',
      });
      await trial.until((s) => progress(s) >= 80);
      await cluster.signal('ps-0', 'SIGKILL');
      const dir = path.join(cluster.logDir, 'checkpoints', 'ps-0');
      const newest = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.bin'))
        .sort()
        .at(-1)!;
      const data = fs.readFileSync(path.join(dir, newest));
      data[Math.floor(data.length / 2)] ^= 0xff;
      fs.writeFileSync(path.join(dir, newest), data);
      await cluster.restart('ps-0');
      const status = await trial.done;
      assertExactlyOnce(status);
      assert.match(
        fs.readFileSync(path.join(cluster.logDir, 'ps-0.log'), 'utf8'),
        /fails its SHA-256 checksum.*skipping an unusable checkpoint/,
      );
    } finally {
      client.close();
    }
  },
);

test(
  'SIGKILL the coordinator and restart it: it takes the trials over from etcd, nothing lost or doubled, finished ones not re-run',
  { timeout: 150_000 },
  async () => {
    await using cluster = await startCluster('kill-coordinator', { workers: 2, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const first = await (
        await submit(client, {
          name: 'before',
          dataset: 'synthetic:spirals',
          model: 'mlp:16',
          batch: 32,
          epochs: 2,
        })
      ).done;
      assert.equal(first.status, 'completed');
      const trial = await submit(client, {
        name: 'across',
        dataset: 'mnist',
        model: 'mlp:64',
        batch: 64,
        epochs: EPOCHS,
        mode: 'async',
      });
      await trial.until((s) => progress(s) >= 50);
      await cluster.signal('coordinator', 'SIGKILL');
      await sleep(500);
      await cluster.restart('coordinator');
      // The watch broke with the coordinator and follows the same trial on the new one.
      const status = await trial.done;
      assertExactlyOnce(status);
      const before = await client.getTrial('before');
      assert.equal(before.status, 'completed', 'a finished trial stays finished');
      assert.equal(
        Number(before.batches_scheduled),
        Number(first.batches_scheduled),
        'and is not run again',
      );
    } finally {
      client.close();
    }
  },
);
