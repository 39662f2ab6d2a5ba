import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import '../helpers/reaper';
import { CAVIAR_BIN, REPO_ROOT, lastJsonLine, runCaviar } from '../helpers/repo';
import { progress, sleep } from '../helpers/cluster';
import { alive, waitUntil } from '../helpers/processes';
import { CoordinatorClient } from '../../core/coordinator-client';
import type { TrainSummary } from '../../client/summary';

interface UpReady {
  coordinator: string;
  processes: Array<{ role: string; id: string; pid: number }>;
}

/** `caviar up --json` as a user starts it; resolves with its ready line. */
function up(args: string[]): {
  child: ChildProcess;
  ready: Promise<UpReady>;
  stderr: () => string;
} {
  const child = spawn(process.execPath, [CAVIAR_BIN, 'up', '--json', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<UpReady>((resolve, reject) => {
    readline
      .createInterface({ input: child.stdout! })
      .once('line', (line) => resolve(JSON.parse(line) as UpReady));
    child.once('exit', (code) => reject(new Error(`caviar up exited (${code}): ${stderr}`)));
  });
  return { child, ready, stderr: () => stderr };
}

test(
  'caviar up keeps its cluster whole: a SIGKILLed worker and a shard killed mid-trial are started again, and caviar train --coordinator completes exactly once',
  { timeout: 180_000 },
  async () => {
    const cluster = up([
      '--workers',
      '2',
      '--shards',
      '2',
      '--backend',
      'wasm',
      '--member-ttl',
      '2',
    ]);
    try {
      const ready = await cluster.ready;
      const pid = (id: string): number => ready.processes.find((p) => p.id === id)!.pid;

      process.kill(pid('worker-0'), 'SIGKILL');
      await waitUntil('worker-0 restarted', () =>
        /restarted worker-0 \(worker, pid \d+, restart 1\)/.test(cluster.stderr()),
      );
      assert.match(cluster.stderr(), /worker-0 \(worker, pid \d+\) exited \(SIGKILL\)/);
      for (const p of ready.processes.filter((p) => p.id !== 'worker-0'))
        assert.ok(alive(p.pid), `${p.id} stayed up`);

      const train = runCaviar(
        [
          'train',
          '--coordinator',
          ready.coordinator,
          '--dataset',
          'mnist',
          '--model',
          'mlp:64',
        ].concat(['--batch', '64', '--epochs', '3', '--mode', 'async', '--json']),
        { timeoutMs: 150_000 },
      );
      // Killed mid-trial: once the trial has trained 30 batches and is still running.
      const client = new CoordinatorClient(ready.coordinator);
      try {
        let running = false;
        await waitUntil(
          'the trial to train 30 batches',
          () => running,
          60_000,
          async () => {
            const [trial] = await client.listTrials().catch(() => []);
            running = trial?.status === 'running' && progress(trial) >= 30;
          },
        );
      } finally {
        client.close();
      }
      process.kill(pid('ps-1'), 'SIGKILL');
      const result = await train;
      assert.equal(result.code, 0, result.stderr);
      const summary = lastJsonLine<TrainSummary>(result.stdout);
      assert.equal(summary.status, 'completed');
      assert.equal(summary.batches_applied, summary.batches_scheduled);
      assert.match(cluster.stderr(), /restarted ps-1 \(ps, pid \d+, restart 1\)/);
    } finally {
      const exited = new Promise((resolve) => cluster.child.once('exit', resolve));
      cluster.child.kill('SIGTERM');
      await exited;
    }
  },
);

test(
  'caviar up --no-restart leaves a dead role down and the others up',
  { timeout: 120_000 },
  async () => {
    const cluster = up(['--workers', '1', '--shards', '1', '--backend', 'wasm', '--no-restart']);
    try {
      const ready = await cluster.ready;
      const worker = ready.processes.find((p) => p.role === 'worker')!;
      process.kill(worker.pid, 'SIGKILL');
      await waitUntil('the death is told', () =>
        /worker-0 \(worker, pid \d+\) exited \(SIGKILL\)/.test(cluster.stderr()),
      );
      await sleep(2_000);
      assert.doesNotMatch(cluster.stderr(), /restarted/);
      for (const p of ready.processes.filter((p) => p.role !== 'worker'))
        assert.ok(alive(p.pid), `${p.id} stayed up`);
      assert.equal(cluster.child.exitCode, null, 'caviar up itself is still running');
    } finally {
      const exited = new Promise((resolve) => cluster.child.once('exit', resolve));
      cluster.child.kill('SIGTERM');
      await exited;
    }
  },
);
