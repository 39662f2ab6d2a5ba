import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainSummary } from '../../client/summary';
import { lastJsonLine, testOutputDir } from '../helpers/repo';
import { sleep } from '../helpers/cluster';
import { MultiHostBed, testbedUnavailable } from '../multihost/testbed';

const unavailable = testbedUnavailable();
const skip = unavailable ? `the multi-host test bed cannot run here: ${unavailable}` : false;
const TTL = 2;

const HOSTS = ['ctl', 'ps0', 'w0', 'w1', 'cli'].map((name) => ({ name }));
const ROLES = { control: 'ctl', shards: ['ps0'], workers: ['w0', 'w1'], ttl: TTL };

function train(bed: MultiHostBed, coordinator: string, epochs: number) {
  return bed.caviarOutput('cli', 'train.log', [
    'train',
    '--coordinator',
    coordinator,
    '--dataset',
    'mnist',
    '--model',
    'mlp:64',
    '--batch',
    '64',
    '--epochs',
    String(epochs),
    '--mode',
    'sync',
    '--json',
  ]);
}

test(
  'multi-host: a sync trial across five hosts (own network and /dev/shm each) trains over the chunk path, every batch applied once',
  { skip, timeout: 240_000 },
  async () => {
    using bed = new MultiHostBed('a', HOSTS, testOutputDir('multihost')).start();
    const { coordinator } = await bed.startCaviar(ROLES);
    const { code, stdout } = await train(bed, coordinator, 2);
    assert.equal(code, 0, fs.readFileSync(path.join(bed.logDir, 'train.log'), 'utf8'));
    const summary = lastJsonLine<TrainSummary>(stdout);
    assert.equal(summary.status, 'completed');
    assert.equal(summary.batches_applied, summary.batches_scheduled);
    assert.equal(summary.workers, 2);
    assert.ok((summary.val_accuracy ?? 0) > 0.8, `val accuracy ${summary.val_accuracy}`);
    for (const n of [0, 1]) {
      const log = fs.readFileSync(path.join(bed.logDir, `worker-${n}.log`), 'utf8');
      const transports = [...log.matchAll(/"transport":"([^"]*)"/g)].map((m) => m[1]);
      assert.ok(transports.length > 0, `worker-${n} never reached the shard`);
      assert.ok(
        transports.every((t) => t !== 'segment'),
        `worker-${n} took the same-host path to another host: ${transports.join('; ')}`,
      );
    }
  },
);

test(
  "multi-host: a worker's link cut for longer than its membership TTL: it leaves, rejoins once the link is back, nothing lost or doubled",
  { skip, timeout: 240_000 },
  async () => {
    using bed = new MultiHostBed('b', HOSTS, testOutputDir('multihost-cut')).start();
    const { coordinator } = await bed.startCaviar(ROLES);
    const run = train(bed, coordinator, 4);
    const coordinatorLog = () => fs.readFileSync(path.join(bed.logDir, 'coordinator.log'), 'utf8');
    for (let i = 0; !/"trial submitted"/.test(coordinatorLog()); i++) {
      if (i > 600) throw new Error('the trial was never submitted');
      await sleep(100);
    }
    await sleep(1_500);
    bed.link('w1', false);
    await sleep((TTL + 3) * 1_000);
    bed.link('w1', true);
    const { code, stdout } = await run;
    assert.equal(code, 0, fs.readFileSync(path.join(bed.logDir, 'train.log'), 'utf8'));
    const summary = lastJsonLine<TrainSummary>(stdout);
    assert.equal(summary.status, 'completed');
    assert.equal(summary.batches_applied, summary.batches_scheduled, 'nothing lost or doubled');
    assert.match(coordinatorLog(), /"id":"worker-1".*"msg":"member left \(lease ended\)"/);
    let members = '';
    for (let i = 0; i < 50 && !members.includes('worker-1'); i++) {
      members = (
        await bed.caviarOutput('cli', 'status.log', [
          'status',
          '--coordinator',
          coordinator,
          '--json',
        ])
      ).stdout;
      await sleep(200);
    }
    assert.match(members, /worker-1/, 'worker-1 registered again once its link was back');
  },
);
