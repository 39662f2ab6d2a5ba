import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TrialSpec } from '../../proto/gen/caviar/v1/TrialSpec';
import { CoordinatorClient } from '../../core/coordinator-client';
import { assertExactlyOnce, progress, sleep, startCluster, submit } from '../helpers/cluster';
import { TcpProxy } from '../helpers/tcp-proxy';

/**
 * RELIABILITY.md rows 10 and 11: the shard sits behind a userspace TCP proxy that every other
 * process reaches it through (the coordinator hands the proxy's address to the workers).
 */
const spec = (epochs: number): TrialSpec => ({
  dataset: 'mnist',
  model: 'mlp:64',
  batch: 64,
  epochs,
  mode: 'async',
  optimizer: { kind: 'adam', lr: 1e-3 },
});

async function proxiedCluster(name: string, proxy: { set(p: TcpProxy): void }) {
  return startCluster(name, {
    workers: 2,
    shards: 1,
    shardRoute: async (address) => {
      const p = new TcpProxy(address);
      proxy.set(p);
      return p.start();
    },
  });
}

test(
  'a slow link (20 ms each way per chunk): the trial completes, every batch applied once',
  {
    timeout: 150_000,
  },
  async () => {
    let proxy: TcpProxy | undefined;
    await using cluster = await proxiedCluster('slow-link', { set: (p) => (proxy = p) });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      proxy!.delayMs = 20;
      const trial = await submit(client, spec(2));
      const status = await trial.done;
      assertExactlyOnce(status);
      assert.ok(proxy!.connections > 0, 'the shard was reached through the proxy');
    } finally {
      client.close();
      await proxy?.close();
    }
  },
);

test(
  'a silent peer (bytes dropped, sockets kept open) for 7 s: no call hangs, training resumes, every batch applied once',
  {
    timeout: 150_000,
  },
  async () => {
    let proxy: TcpProxy | undefined;
    await using cluster = await proxiedCluster('silent-peer', { set: (p) => (proxy = p) });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, spec(3));
      await trial.until((s) => progress(s) >= 30);
      proxy!.silence();
      // Longer than a worker's per-call deadline to the shard (5 s): calls must fail, not hang.
      await sleep(1_000);
      const before = progress(await client.getTrial(trial.id));
      await sleep(6_000);
      const after = progress(await client.getTrial(trial.id));
      assert.equal(after, before, 'no batch completes while the shard is cut off');
      proxy!.restore();
      const status = await trial.done;
      assertExactlyOnce(status);
      assert.ok((status.history.at(-1)?.val_accuracy ?? 0) > 0.8, 'and it still learns');
    } finally {
      client.close();
      await proxy?.close();
    }
  },
);
