import * as fs from 'node:fs';
import type { TrialSpec } from '../../proto/gen/caviar/v1/TrialSpec';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { TrialStatus__Output } from '../../proto/gen/caviar/v1/TrialStatus';
import { LocalCluster, type LocalClusterOptions } from '../../client/local-cluster';
import { CoordinatorClient } from '../../core/coordinator-client';
import { testOutputDir } from './repo';
import { follow } from '../../client/follow';
import './reaper';

/** What a role logs when it lost its membership lease (registration keeper, worker push). */
export const LEASE_LOST_LOG = /membership lease lost|lost its membership lease/;

/** A local cluster on a real etcd, with its logs under .test-output/<name>-*. */
export async function startCluster(
  name: string,
  options: Partial<LocalClusterOptions> = {},
): Promise<LocalCluster> {
  return new LocalCluster({
    workers: 2,
    shards: 2,
    backend: 'wasm',
    memberTtl: 2,
    logDir: testOutputDir(name),
    etcd: 'auto',
    ...options,
  }).start();
}

export interface RunningTrial {
  id: string;
  /** Resolves once `predicate` holds for a status update (or the trial ended). */
  until(predicate: (status: TrialStatus__Output) => boolean): Promise<TrialStatus__Output>;
  done: Promise<TrialStatus__Output>;
}

/** Submits a trial and follows it, so a test can act at a chosen point of its progress. */
export async function submit(client: CoordinatorClient, spec: TrialSpec): Promise<RunningTrial> {
  const submitted = await client.submitTrial(spec);
  const listeners: Array<{
    predicate: (s: TrialStatus__Output) => boolean;
    resolve: (s: TrialStatus__Output) => void;
  }> = [];
  // Follows the trial across a coordinator restart, as the CLI does.
  let last: TrialStatus__Output | undefined;
  const done = follow(
    submitted,
    () => client.watchTrial(submitted.trial),
    (status) => {
      for (const l of [...listeners]) {
        if (l.predicate(status)) {
          listeners.splice(listeners.indexOf(l), 1);
          l.resolve(status);
        }
      }
    },
  ).then((final) => {
    last = final;
    for (const l of listeners) l.resolve(final);
    return final;
  });
  // A test that fails before it awaits `done` must report its own error, not this rejection.
  done.catch(() => undefined);
  return {
    id: submitted.trial,
    done,
    // Asked after the end, the answer is the end: nothing would resolve it later.
    until: (predicate) =>
      new Promise((resolve) => (last ? resolve(last) : listeners.push({ predicate, resolve }))),
  };
}

/**
 * The trial the fault tests interrupt: 3 epochs of MNIST in mini-batches of 64, long enough to
 * kill things in the middle, small enough for wasm workers.
 */
export function faultTrial(mode: 'sync' | 'async' = 'async'): TrialSpec {
  return {
    dataset: 'mnist',
    model: 'mlp:64',
    batch: 64,
    epochs: 3,
    mode,
    optimizer: { kind: 'adam', lr: 1e-3 },
  };
}

/** Batches trained so far, across epochs. */
export function progress(status: TrialStatus__Output): number {
  return status.epoch * status.batches_per_epoch + status.batches_done;
}

/**
 * Time to recover from a fault that began at `since` with the trial at `from` batches: until the
 * trial is past `from` again (repairs first take back what a shard lost). A test diagnostic
 * (`recovery_ms=N`), which `npm run soak` collects.
 */
export async function reportRecovery(
  t: TestContext,
  trial: RunningTrial,
  from: number,
  since: number,
): Promise<void> {
  await trial.until((s) => progress(s) > from || s.status !== 'running');
  t.diagnostic(`recovery_ms=${Date.now() - since}`);
}

/**
 * SIGKILLs role process `id`, starts it again after `downMs`, and from then watches the trial
 * (seen at `seen` when the kill came) for its time to recover: the returned promise, which
 * reports it (reportRecovery) once the trial is past `seen` again.
 */
export async function killAndRestart(
  t: TestContext,
  cluster: LocalCluster,
  trial: RunningTrial,
  id: string,
  seen: TrialStatus__Output,
  downMs: number,
): Promise<{ recovered: Promise<void> }> {
  const killed = Date.now();
  await cluster.signal(id, 'SIGKILL');
  await sleep(downMs);
  await cluster.restart(id);
  return { recovered: reportRecovery(t, trial, progress(seen), killed) };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Nothing lost, nothing doubled: the trial completed and every shard applied each scheduled
 * batch (epochs × batches per epoch) exactly once.
 */
export function assertExactlyOnce(status: TrialStatus__Output): void {
  assert.equal(status.status, 'completed', status.error);
  const scheduled = Number(status.batches_scheduled);
  assert.equal(scheduled, (status.spec?.epochs ?? 0) * status.batches_per_epoch);
  assert.deepEqual(
    status.batches_applied_per_shard.map(Number),
    status.batches_applied_per_shard.map(() => scheduled),
    'every shard applied every scheduled batch exactly once',
  );
  assert.equal(Number(status.batches_applied), scheduled);
}

/** Waits until the process is stopped (state T in /proc). */
export async function waitForStop(pid: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) T /.test(stat)) return;
    await sleep(50);
  }
  throw new Error(`process ${pid} never stopped`);
}
