import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, tempDir } from '../helpers/repo';
import { alive, waitUntil } from '../helpers/processes';

const FIXTURE = path.join(REPO_ROOT, 'dist', 'test', 'fault', 'fixtures', 'hanging-test.js');

/** Waits up to `ms` for every pid to be gone; the ones still alive. */
async function survivors(pids: number[], ms: number): Promise<number[]> {
  await waitUntil('the processes to end', () => !pids.some(alive), ms).catch(() => undefined);
  return pids.filter(alive);
}

async function pidsFrom(file: string, ms: number): Promise<number[]> {
  await waitUntil(`${file}`, () => fs.existsSync(file), ms);
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as number[]).filter((pid) => pid > 0);
}

interface Run {
  code: number | null;
  output: string;
  seconds: number;
}

function runNode(args: string[], env: NodeJS.ProcessEnv, limitMs: number): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    // A nested run of its own: not one of this run's test files.
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, seconds: (Date.now() - started) / 1000 });
    }),
  );
}

test(
  'a fault test that times out ends the run, prints its roles’ log tails and leaves no caviar or etcd process behind',
  { timeout: 120_000 },
  async () => {
    const pidsFile = path.join(tempDir('hang'), 'pids.json');
    const run = await runNode(
      ['--test', '--test-force-exit', FIXTURE],
      { CAVIAR_HANG_PIDS: pidsFile },
      90_000,
    );
    assert.notEqual(run.code, 0, 'the run fails');
    assert.notEqual(run.code, null, `the run ended by itself, in ${run.seconds} s`);
    assert.match(run.output, /timed out after 20000ms/);
    assert.match(run.output, /its clusters' logs end:[\s\S]*coordinator\.log/);
    const pids = await pidsFrom(pidsFile, 1_000);
    assert.equal(pids.length, 4, 'etcd, a shard, the coordinator and a worker were up');
    assert.deepEqual(await survivors(pids, 5_000), [], 'none of them is left');
  },
);

test(
  'a test process SIGKILLed with its cluster up takes the cluster with it',
  { timeout: 120_000 },
  async () => {
    const pidsFile = path.join(tempDir('hang'), 'pids.json');
    // Run as a plain script, so no reaper runs: only the parent-death signal can end the roles.
    const child = spawn(process.execPath, [FIXTURE], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, CAVIAR_HANG_PIDS: pidsFile },
      stdio: 'ignore',
    });
    try {
      const pids = await pidsFrom(pidsFile, 60_000);
      assert.equal(pids.length, 4);
      child.kill('SIGKILL');
      assert.deepEqual(await survivors(pids, 5_000), [], 'no role or etcd outlives it');
    } finally {
      child.kill('SIGKILL');
    }
  },
);
