import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster } from '../../client/local-cluster';
import { CoordinatorClient } from '../../core/coordinator-client';
import { assertExactlyOnce, progress, sleep, submit, waitForStop } from '../helpers/cluster';
import { testOutputDir } from '../helpers/repo';

const BOUND = 2;
const LEASE_MS = 3_000;

/** A Prometheus histogram's cumulative bucket counts by `le`, summed over its series. */
function buckets(text: string, name: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of text.matchAll(
    new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\S+)$`, 'gm'),
  ))
    counts.set(m[1], (counts.get(m[1]) ?? 0) + Number(m[2]));
  return counts;
}

test(
  `ssp:${BOUND}: with one worker stopped holding its lease, the other stops within ${BOUND} versions of it; every applied push is within ${BOUND} versions; nothing lost or doubled`,
  { timeout: 180_000 },
  async () => {
    await using cluster = await new LocalCluster({
      workers: 2,
      shards: 1,
      backend: 'wasm',
      etcd: 'none',
      leaseMs: LEASE_MS,
      logDir: testOutputDir('ssp'),
    }).start();
    // worker-1 stops itself right before its 40th push: lease and values in hand, a slow worker.
    await cluster.signal('worker-1', 'SIGKILL');
    await cluster.restart('worker-1', { CAVIAR_FAULT: 'stop-before-push:40' });
    const slow = cluster.process('worker-1').child;
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, {
        dataset: 'mnist',
        model: 'mlp:32',
        batch: 16,
        epochs: 3,
        mode: `ssp:${BOUND}`,
      });
      await waitForStop(slow.pid!);
      // The fast worker's batches in flight land; then it may not start one more.
      await sleep(500);
      const stalled = progress(await client.getTrial(trial.id));
      await sleep(1_000);
      assert.equal(
        progress(await client.getTrial(trial.id)),
        stalled,
        'the fast worker waits while the slow one holds its lease',
      );
      // Once the slow lease expires its batches go back to the queue and the fast worker goes on.
      await sleep(LEASE_MS);
      const resumed = progress(await client.getTrial(trial.id));
      assert.ok(resumed > stalled, `no progress after the lease expired: ${resumed}`);
      slow.kill('SIGCONT');
      const status = await trial.done;
      assert.equal(status.status, 'completed', status.error);
      assertExactlyOnce(status);
      const late = (status.pushes_refused.stale ?? 0) + (status.pushes_refused.duplicate ?? 0);
      assert.ok(late >= 1, `the late push was refused: ${JSON.stringify(status.pushes_refused)}`);

      const shard = cluster.processes.find((p) => p.role === 'ps');
      const text = await (await fetch(shard!.metrics!)).text();
      const counts = buckets(text, 'caviar_ps_push_staleness');
      assert.ok((counts.get('+Inf') ?? 0) >= status.batches_applied, text);
      assert.equal(counts.get(String(BOUND)), counts.get('+Inf'), 'a push past the bound applied');
    } finally {
      client.close();
    }
  },
);
