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
import type { TrialStatus__Output } from '../../proto/gen/caviar/v1/TrialStatus';

interface UpReady {
  coordinator: string;
  metrics: string[];
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

/** Where in a trial the test kills a shard of the cluster `caviar up` keeps. */
const KILL_POINTS: Array<{ name: string; ready: (s: TrialStatus__Output | undefined) => boolean }> =
  [
    // While the coordinator starts the trial on the shards (the submission waits for the shard).
    { name: 'start', ready: () => true },
    { name: 'mid-epoch', ready: (s) => s !== undefined && progress(s) >= 30 },
    {
      name: "an epoch's end",
      ready: (s) => s !== undefined && progress(s) >= s.batches_per_epoch - 4,
    },
  ];

test(
  "caviar up keeps its cluster whole: a SIGKILLed worker, a shard killed at a trial's start, mid-epoch and at an epoch's end (sync and async), the coordinator and a worker mid-epoch are started again; caviar train --coordinator completes each trial exactly once",
  { timeout: 300_000 },
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
    const client = new CoordinatorClient((await cluster.ready).coordinator);
    try {
      const ready = await cluster.ready;
      // The newest pid of each process: `up` names the new one when it restarts it.
      const pid = (id: string): number => {
        const restarts = [
          ...cluster.stderr().matchAll(new RegExp(`restarted ${id} \\(\\w+, pid (\\d+)`, 'g')),
        ];
        return Number(restarts.at(-1)?.[1] ?? ready.processes.find((p) => p.id === id)!.pid);
      };
      const restartsOf = (id: string): number =>
        [...cluster.stderr().matchAll(new RegExp(`restarted ${id} `, 'g'))].length;

      process.kill(pid('worker-0'), 'SIGKILL');
      await waitUntil('worker-0 restarted', () => restartsOf('worker-0') === 1);
      assert.match(cluster.stderr(), /worker-0 \(worker, pid \d+\) exited \(SIGKILL\)/);
      for (const p of ready.processes.filter((p) => p.id !== 'worker-0'))
        assert.ok(alive(p.pid), `${p.id} stayed up`);
      // up's own endpoint, the last of the ready line's, counts the restart.
      const scrape = await (await fetch(ready.metrics.at(-1)!)).text();
      assert.match(scrape, /caviar_role_restarts_total\{role="worker",worker="worker-0"\} 1/);

      // Each shard in turn, so neither's restart back-off grows long; then the coordinator (the
      // CLI's watch follows it to its restart) and a worker.
      const rounds = (['async', 'sync'] as const).flatMap((mode, m) =>
        KILL_POINTS.map((point, p) => ({ mode, point, victim: `ps-${(m + p) % 2}` })),
      );
      rounds.push({ mode: 'async', point: KILL_POINTS[1], victim: 'coordinator' });
      rounds.push({ mode: 'sync', point: KILL_POINTS[1], victim: 'worker-1' });
      for (const { mode, point, victim } of rounds) {
        const before = restartsOf(victim);
        const name = `${mode}-${point.name.replace(/\W+/g, '-')}-${victim}`;
        const train = runCaviar(
          ['train', '--coordinator', ready.coordinator, '--dataset', 'mnist', '--model'].concat([
            'mlp:64',
            '--batch',
            '64',
            '--epochs',
            '4',
            '--mode',
            mode,
            '--name',
            name,
            '--json',
          ]),
          { timeoutMs: 120_000 },
        );
        let status: TrialStatus__Output | undefined;
        await waitUntil(
          `${name} to reach ${point.name}`,
          () => point.ready(status),
          60_000,
          async () => {
            status = await client.getTrial(name).catch(() => undefined);
          },
        );
        assert.ok(point.name === 'start' || status?.status === 'running', `${name} still trains`);
        process.kill(pid(victim), 'SIGKILL');
        const result = await train;
        assert.equal(result.code, 0, `${name}: ${result.stderr}`);
        const summary = lastJsonLine<TrainSummary>(result.stdout);
        assert.equal(summary.status, 'completed', name);
        assert.equal(summary.batches_applied, summary.batches_scheduled, name);
        await waitUntil(`${victim} restarted`, () => restartsOf(victim) === before + 1);
      }
    } finally {
      client.close();
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
