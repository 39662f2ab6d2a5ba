import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { Work } from '../../proto/gen/caviar/v1/Work';
import type { WorkResult__Output } from '../../proto/gen/caviar/v1/WorkResult';
import { WorkDispatcher } from '../../coordinator/work-dispatch';
import { TrialRun, type Task } from '../../coordinator/trial-run';
import { TrialTable } from '../../coordinator/trial-table';
import type { TrialRecord } from '../../coordinator/trial-record';
import type { ClusterRoster } from '../../coordinator/cluster-roster';
import { resolveTrialSpec } from '../../core/trial-spec';

interface Returned {
  task: Task;
  result: WorkResult__Output;
}

/** A dispatcher over one trial of `trainCount` examples in batches of 2, and what it reports. */
function setUp(
  mode: 'sync' | 'async',
  trainCount: number,
  liveWorkers: number,
  batchesPerLease = 4,
) {
  const spec = resolveTrialSpec({
    dataset: 'synthetic:spirals',
    model: 'mlp:4',
    batch: 2,
    epochs: 1,
    mode,
    seed: 3,
  });
  let live = liveWorkers;
  const run = new TrialRun({ spec, trainCount, quorum: () => live, lr: () => 0.1 });
  // Only what the dispatcher reads of a record and of the roster (in-process fakes).
  const record = { id: 'trial-1', spec, run, shards: ['127.0.0.1:1'] } as unknown as TrialRecord;
  const trials = new TrialTable();
  trials.add(record);
  const roster = {
    mayTakeWork: () => true,
    touchWorker: () => undefined,
    liveWorkerCount: () => live,
  } as unknown as ClusterRoster;
  const returned: Returned[] = [];
  const dispatch = new WorkDispatcher({
    trials,
    roster,
    log: pino({ level: 'silent' }),
    leaseMs: 60_000,
    batchesPerLease,
    taskReturned: (_record, task, result) => {
      returned.push({ task, result });
      if (result.error) run.release(task);
      else if (task.kind === 'train') run.completeTrain(task, result.loss);
    },
    changed: () => undefined,
  });
  const acquire = (worker: string): Work => {
    let work: Work | undefined;
    const call = { request: { worker, wait_ms: 1 }, cancelled: false };
    dispatch.acquireWork(
      call as unknown as grpc.ServerUnaryCall<{ worker: string; wait_ms: number }, Work>,
      (err, value) => {
        assert.equal(err, null);
        work = value ?? undefined;
      },
    );
    assert.ok(work, 'an immediate answer');
    return work;
  };
  /** The task an AcquireWork gets at once, or undefined where it would have to wait. */
  const tryAcquire = (worker: string): Work | undefined => {
    let work: Work | undefined;
    // Cancelled: a poll left waiting drops out at the next wake instead of taking a later task.
    const call = { request: { worker, wait_ms: 1 }, cancelled: true };
    dispatch.acquireWork(
      call as unknown as grpc.ServerUnaryCall<{ worker: string; wait_ms: number }, Work>,
      (_err, value) => (work ??= value ?? undefined),
    );
    return work;
  };
  const result = (lease: string, fields: Partial<WorkResult__Output> = {}): WorkResult__Output =>
    ({ lease, worker: 'w1', loss: 1, more_losses: [], error: '', ...fields }) as WorkResult__Output;
  const setLive = (n: number): void => {
    live = n;
  };
  return { run, dispatch, acquire, tryAcquire, result, returned, setLive };
}

const batchesOf = (work: Work): number[] => [
  Number(work.batch),
  ...(work.more ?? []).map((b) => Number(b.batch)),
];

test('async: a lease holds up to 4 batches, fewer once the epoch runs short for every worker', () => {
  const { run, dispatch, acquire } = setUp('async', 40, 2); // 20 batches
  const sizes: number[] = [];
  for (let k = 0; run.queuedBatches() > 0; k++) {
    const work = acquire(k % 2 ? 'w2' : 'w1');
    assert.equal(work.kind, 'train');
    sizes.push(batchesOf(work).length);
  }
  // 20 queued: four leases of 4; of the last 4, a lease takes 1 plus its share of the other 3
  // between 2 workers (1); of the last 2, one each.
  assert.deepEqual(sizes, [4, 4, 4, 4, 2, 1, 1]);
  dispatch.close();
});

test('sync: a lease holds one batch of each of up to 4 consecutive steps', () => {
  const { dispatch, acquire, result } = setUp('sync', 20, 2); // 10 batches, 5 steps of 2
  const a = acquire('w1');
  const b = acquire('w2');
  assert.deepEqual(batchesOf(a), [0, 2, 4, 6]);
  assert.deepEqual(batchesOf(b), [1, 3, 5, 7]);
  assert.deepEqual([a.step, ...(a.more ?? []).map((m) => m.step)], [0, 1, 2, 3]);
  // Step 4 is the epoch's last: its batches go one to each worker once their leases are done.
  assert.ok(dispatch.completeWork(result(a.lease ?? '', { more_losses: [1, 1, 1] })));
  assert.ok(dispatch.completeWork(result(b.lease ?? '', { worker: 'w2', more_losses: [1, 1, 1] })));
  assert.deepEqual(batchesOf(acquire('w1')), [8]);
  assert.deepEqual(batchesOf(acquire('w2')), [9]);
  dispatch.close();
});

test("sync: a lease reaches past a step only while other live workers can take the step's rest", () => {
  const { dispatch, acquire, setLive } = setUp('sync', 20, 2); // steps of 2 (the quorum)
  setLive(1); // the other worker died after the epoch began
  assert.deepEqual(batchesOf(acquire('w1')), [0]);
  dispatch.close();
});

test('sync: a worker is not handed a second batch of a step it holds one of, until it reports', () => {
  const { dispatch, acquire, tryAcquire, result } = setUp('sync', 16, 2, 1); // steps of 2
  const first = acquire('w1');
  assert.deepEqual([first.batch, first.step], [0, 0]);
  // Asked ahead while it pushes batch 0, w1 would get batch 1 and wait on itself.
  assert.equal(tryAcquire('w1'), undefined);
  const other = acquire('w2');
  assert.deepEqual([other.batch, other.step], [1, 0]);
  const next = acquire('w1');
  assert.deepEqual([next.batch, next.step], [2, 1]);
  // A worker alone on a step takes its other batch once its own is reported (the other worker
  // died, say).
  assert.ok(dispatch.completeWork(result(next.lease ?? '')));
  assert.ok(dispatch.completeWork(result(first.lease ?? '')));
  assert.ok(dispatch.completeWork(result(other.lease ?? '', { worker: 'w2' })));
  const third = acquire('w1');
  assert.deepEqual([third.batch, third.step], [3, 1]);
  dispatch.close();
});

test("a lease's report completes each of its batches with its own loss; its timings count once", () => {
  const { run, dispatch, acquire, result, returned } = setUp('async', 40, 1);
  const work = acquire('w1');
  const batches = batchesOf(work);
  assert.equal(batches.length, 4);
  const ok = dispatch.completeWork(
    result(work.lease!, { loss: 1, more_losses: [2, 3, 4], compute_ms: 8, push_ms: 4 }),
  );
  assert.ok(ok);
  assert.deepEqual(
    returned.map((r) => (r.task.kind === 'train' ? r.task.batch : -1)),
    batches,
  );
  assert.deepEqual(
    returned.map((r) => r.result.loss),
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    returned.map((r) => r.result.compute_ms + r.result.push_ms),
    [12, 0, 0, 0],
  );
  assert.equal(run.lastLoss, 4);
  assert.equal(dispatch.completeWork(result(work.lease!)), false, 'a lease completes once');
  dispatch.close();
});

test("a failed lease counts as one failure and all its batches go back, as do a departed worker's", () => {
  const { run, dispatch, acquire, result, returned } = setUp('async', 16, 1); // 8 batches
  const first = acquire('w1');
  assert.equal(batchesOf(first).length, 4);
  assert.ok(dispatch.completeWork(result(first.lease!, { error: 'boom' })));
  assert.equal(returned.length, 1, 'one failure reported, not one per batch');
  assert.equal(run.queuedBatches(), 8, 'every batch of the lease is queued again');

  const second = acquire('w1');
  assert.deepEqual(batchesOf(second), batchesOf(first), 'the same batches, in order');
  dispatch.workerLeft('w1');
  assert.equal(run.queuedBatches(), 8);
  dispatch.close();
});
