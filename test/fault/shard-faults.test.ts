import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { procStatusBytes } from '../helpers/processes';
import { CoordinatorClient } from '../../core/coordinator-client';
import { follow } from '../../client/follow';
import {
  assertExactlyOnce,
  faultTrial,
  killAndRestart,
  progress,
  reportRecovery,
  sleep,
  startCluster,
  submit,
} from '../helpers/cluster';

test(
  'a corrupt newest checkpoint is refused by its checksum and the previous one restored',
  { timeout: 150_000 },
  async () => {
    await using cluster = await startCluster('corrupt-checkpoint', { workers: 2, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, faultTrial('async'));
      await trial.until((s) => progress(s) >= 80);
      await cluster.signal('ps-0', 'SIGKILL');
      const dir = path.join(cluster.logDir, 'checkpoints', 'ps-0');
      // The newest complete checkpoint: a .bin whose manifest is not written yet (the kill can
      // land between the two) is not one the shard would restore anyway.
      const manifest = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.manifest.json'))
        .sort()
        .at(-1)!;
      const newest = (
        JSON.parse(fs.readFileSync(path.join(dir, manifest), 'utf8')) as {
          file: string;
        }
      ).file;
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
  async (t) => {
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
      const trial = await submit(client, { ...faultTrial('async'), name: 'across' });
      const seen = await trial.until((s) => progress(s) >= 50);
      const { recovered } = await killAndRestart(t, cluster, trial, 'coordinator', seen, 500);
      // The watch broke with the coordinator and follows the same trial on the new one.
      const status = await trial.done;
      await recovered;
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

test(
  'SIGKILL the coordinator the moment it accepted a trial: the restarted one has it and runs it once',
  { timeout: 150_000 },
  async () => {
    await using cluster = await startCluster('kill-after-submit', { workers: 2, shards: 1 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, { ...faultTrial('async'), name: 'accepted' });
      await cluster.signal('coordinator', 'SIGKILL');
      await sleep(500);
      await cluster.restart('coordinator');
      assertExactlyOnce(await trial.done);
    } finally {
      client.close();
    }
  },
);

test(
  'SIGKILL the coordinator during a sweep: the restarted one takes the sweep over and finishes it',
  { timeout: 150_000 },
  async () => {
    await using cluster = await startCluster('kill-coordinator-sweep', { workers: 2, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    const spec = [
      'name: takeover',
      'dataset: { source: mnist }',
      'model: { type: mlp, hidden: [32] }',
      'train: { batch: 128, epochs: 2 }',
      'search: { lr: { log_uniform: [1.0e-3, 1.0e-2] } }',
      'budget: { trials: 4, parallel: 2, seed: 1 }',
      'refine: { rounds: 1, top: 2, trials: 2 }',
    ].join('\n');
    try {
      const submitted = await client.submitSweep({ spec, source: 'takeover.yaml', base_dir: '' });
      let seen = submitted;
      await new Promise<void>((resolve, reject) => {
        void follow(
          submitted,
          () => client.watchSweep('takeover'),
          (s) => {
            seen = s;
            if (s.trials.length >= 3) resolve();
          },
        ).catch(reject);
      });
      await cluster.signal('coordinator', 'SIGKILL');
      await sleep(500);
      await cluster.restart('coordinator');
      const done = await follow(
        seen,
        () => client.watchSweep('takeover'),
        () => undefined,
      );
      assert.equal(done.status, 'completed', done.error);
      assert.equal(done.trials.length, 6, 'every planned trial ran, none twice');
      assert.equal(new Set(done.trials.map((t) => t.trial)).size, 6);
      for (const t of done.trials) assertExactlyOnce(t);
      assert.ok(done.best);
    } finally {
      client.close();
    }
  },
);

/** Resident memory of a process, in MB, from /proc. */
const rssMb = (pid: number): number => procStatusBytes(pid, 'VmRSS') / 2 ** 20;

test(
  'a shard paused (SIGSTOP) past its membership TTL: workers wait with bounded memory, then every batch is applied once',
  { timeout: 150_000 },
  async (t) => {
    await using cluster = await startCluster('pause-shard', { workers: 2, shards: 2 });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const trial = await submit(client, faultTrial('async'));
      await trial.until((s) => progress(s) >= 40);
      const others = cluster.processes.filter((p) => p.id !== 'ps-1').map((p) => p.pid);
      const memory = (): number => others.reduce((mb, pid) => mb + rssMb(pid), 0);
      const before = memory();
      await cluster.signal('ps-1', 'SIGSTOP');
      // Longer than the membership TTL (2 s here) and a worker's per-call deadline (5 s).
      await sleep(1_000);
      const stalled = progress(await client.getTrial(trial.id));
      let peak = before;
      for (let i = 0; i < 10; i++) {
        await sleep(500);
        peak = Math.max(peak, memory());
      }
      const after = progress(await client.getTrial(trial.id));
      assert.equal(after, stalled, 'no batch completes while one of its shards is paused');
      // Each worker holds at most one lease's push per shard; nothing queues up behind it.
      assert.ok(peak - before < 64, `memory grew ${(peak - before).toFixed(1)} MB while paused`);
      const resumed = Date.now();
      await cluster.signal('ps-1', 'SIGCONT');
      const recovery = reportRecovery(t, trial, after, resumed);
      const status = await trial.done;
      await recovery;
      assertExactlyOnce(status);
      assert.ok((status.history.at(-1)?.val_accuracy ?? 0) > 0.8, 'and it still learns');
    } finally {
      client.close();
    }
  },
);
