import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CoordinatorClient } from '../../core/coordinator-client';
import { ParameterServerClient } from '../../core/ps-client';
import {
  LEASE_LOST_LOG,
  assertExactlyOnce,
  progress,
  startCluster,
  submit,
} from '../helpers/cluster';
import { procStatusBytes } from '../helpers/processes';
import { EventLoopWatch } from '../helpers/event-loop';

const rssAnonBytes = (pid: number): number => procStatusBytes(pid, 'RssAnon');

/** 31.8M parameters (127 MB a copy): 4.7M + 27M in two dense kernels. */
const MODEL = 'mlp:6000,4500';
/** What a shard may hold per value it owns: values, Adam's m and v, a snapshot and change. */
const COPIES_BOUND = 4.5;
/**
 * A worker's event loop may stall at most this long: a third of the membership TTL (3 s). A
 * batch's compute (about 1.5 s here) holds no main thread: it runs on the compute thread.
 */
const WORKER_STALL_BOUND_S = 1;
/**
 * Headroom over a shard's idle size for transfer buffers: a chunk stream's 1 MB messages are
 * garbage once sent, and V8 frees such external memory only about every 64 MB of it.
 */
const TRANSFER_HEADROOM = 160 << 20;

test(
  `a ${MODEL} trial (31.8M parameters) trains on 2 workers and 2 shards: no lease lost, every batch applied once, shard memory within ${COPIES_BOUND} copies of its slices, workers' event loops free`,
  { timeout: 240_000 },
  async (t) => {
    await using cluster = await startCluster('large-model', { backend: 'blas' });
    const shards = ['ps-0', 'ps-1'].map((id) => cluster.process(id));
    const idle = shards.map((p) => rssAnonBytes(p.pid));
    const peak = [...idle];
    const sampler = setInterval(() => {
      shards.forEach((p, i) => (peak[i] = Math.max(peak[i], rssAnonBytes(p.pid))));
    }, 100);
    const workers = ['worker-0', 'worker-1'].map((id) => cluster.process(id));
    const lagWatch = new EventLoopWatch(workers, 500);
    try {
      const client = new CoordinatorClient(cluster.coordinator);
      const trial = await submit(client, {
        dataset: 'mnist',
        model: MODEL,
        batch: 256,
        epochs: 1,
        mode: 'async',
        optimizer: { kind: 'adam', lr: 1e-4 },
      });
      await trial.until((s) => progress(s) >= 1);
      const owned = await Promise.all(
        shards.map(async (p) => {
          const shard = new ParameterServerClient(p.address);
          try {
            return Number((await shard.stats(trial.id)).elements);
          } finally {
            shard.close();
          }
        }),
      );
      assert.ok(
        owned.every((n) => n > 15_000_000),
        `each shard owns about half: ${owned.join(', ')}`,
      );
      const final = await trial.done;
      const lag = lagWatch.stop();
      assertExactlyOnce(final);
      for (const w of workers) {
        const p99 = lag.get(w.id)!;
        t.diagnostic(`${w.id}: event-loop delay p99 at most ${(p99 * 1000).toFixed(0)} ms`);
        assert.ok(p99 < WORKER_STALL_BOUND_S, `${w.id}: event-loop delay p99 ${p99} s`);
      }
      assert.deepEqual(final.pushes_refused, {}, 'no push refused (none fenced)');
      shards.forEach((p, i) => {
        const bound = idle[i] + COPIES_BOUND * 4 * owned[i] + TRANSFER_HEADROOM;
        const mb = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MB`;
        t.diagnostic(
          `${p.id}: peak ${mb(peak[i])} (${((peak[i] - idle[i]) / (4 * owned[i])).toFixed(2)} copies over idle ${mb(idle[i])})`,
        );
        assert.ok(
          peak[i] <= bound,
          `${p.id}: peak ${mb(peak[i])} private memory, idle ${mb(idle[i])}, ${owned[i]} values owned; bound ${mb(bound)}`,
        );
      });
      for (const file of fs.readdirSync(cluster.logDir).filter((f) => f.endsWith('.log'))) {
        const log = fs.readFileSync(path.join(cluster.logDir, file), 'utf8');
        assert.doesNotMatch(log, LEASE_LOST_LOG, file);
        assert.doesNotMatch(log, /member left \(lease ended\)/, file);
      }
    } finally {
      clearInterval(sampler);
      lagWatch.stop();
    }
  },
);
