import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrialRun, type Task } from '../../coordinator/trial-run';
import { LeaseTable } from '../../coordinator/leases';
import { resolveTrialSpec } from '../../core/trial-spec';

type TrainTask = Extract<Task, { kind: 'train' }>;

function run(
  mode: 'sync' | 'async',
  quorum: number,
  trainCount = 10,
  batch = 2,
  epochs = 2,
): TrialRun {
  const spec = resolveTrialSpec({
    dataset: 'synthetic:spirals',
    model: 'mlp:4',
    batch,
    epochs,
    mode,
    seed: 3,
  });
  return new TrialRun({ spec, trainCount, quorum: () => quorum, lr: () => 0.1 });
}

function drainTrain(r: TrialRun): TrainTask[] {
  const tasks: TrainTask[] = [];
  for (let t = r.takeTask(); t?.kind === 'train'; t = r.takeTask()) tasks.push(t);
  return tasks;
}

test('async: every batch of an epoch is handed out once, then the evaluation, then the next epoch', () => {
  const r = run('async', 1);
  const tasks = drainTrain(r);
  assert.equal(tasks.length, 5);
  const seen = new Set(tasks.flatMap((t) => [...t.indices]));
  assert.equal(seen.size, 10, 'the epoch covers every training example once');
  assert.equal(r.takeTask(), undefined, 'nothing more until the batches are done');
  for (const t of tasks) assert.ok(r.completeTrain(t, 1));
  assert.equal(r.evalState, 'verify', 'the shards are asked before the evaluation goes out');
  assert.equal(r.takeTask(), undefined);
  r.verified();
  const evalTask = r.takeTask();
  assert.deepEqual(evalTask, { kind: 'eval', epoch: 0 });
  assert.ok(r.completeEval(0, { valLoss: 0.5, valAccuracy: 0.9 }));
  assert.equal(r.epoch, 1);
  const next = drainTrain(r);
  assert.notDeepEqual(
    next.map((t) => [...t.indices]),
    tasks.map((t) => [...t.indices]),
    'epochs are shuffled differently',
  );
  for (const t of next) r.completeTrain(t, 1);
  r.verified();
  assert.equal(
    r.completeEval(1, { valLoss: 0.4, valAccuracy: 0.92 }),
    false,
    'an evaluation that was never handed out is refused',
  );
  assert.deepEqual(r.takeTask(), { kind: 'eval', epoch: 1 });
  assert.ok(r.completeEval(1, { valLoss: 0.4, valAccuracy: 0.92 }));
  assert.equal(r.state, 'finishing');
  assert.equal(r.scheduled, 10);
  assert.equal(r.history.length, 2);
});

test('sync: a step is handed out only once every earlier step is done, with its size and version', () => {
  const r = run('sync', 2, 10, 2); // 5 batches: steps of 2, 2, 1
  const first = drainTrain(r);
  assert.deepEqual(
    first.map((t) => [t.step, t.stepSize, t.minVersion]),
    [
      [0, 2, 0],
      [0, 2, 0],
    ],
  );
  r.completeTrain(first[0], 1);
  assert.equal(r.takeTask(), undefined, 'step 1 waits for all of step 0');
  r.completeTrain(first[1], 1);
  const second = drainTrain(r);
  assert.deepEqual(
    second.map((t) => [t.step, t.stepSize, t.minVersion]),
    [
      [1, 2, 1],
      [1, 2, 1],
    ],
  );
  second.forEach((t) => r.completeTrain(t, 1));
  const third = drainTrain(r);
  assert.deepEqual(
    third.map((t) => [t.step, t.stepSize]),
    [[2, 1]],
  );
  r.completeTrain(third[0], 1);
  r.verified();
  r.takeTask();
  r.completeEval(0, { valLoss: 1, valAccuracy: 0.5 });
  assert.equal(drainTrain(r)[0].minVersion, 3, 'epoch 2 starts after the 3 steps of epoch 1');
});

test('sync: the quorum follows the live workers from one epoch to the next', () => {
  let live = 2;
  const spec = resolveTrialSpec({
    dataset: 'synthetic:spirals',
    model: 'mlp:4',
    batch: 2,
    epochs: 2,
    mode: 'sync',
    seed: 3,
  });
  const r = new TrialRun({ spec, trainCount: 8, quorum: () => live, lr: () => 0.1 }); // 4 batches
  for (let step = 0; step < 2; step++) drainTrain(r).forEach((t) => r.completeTrain(t, 1));
  r.verified();
  r.takeTask();
  live = 1; // a worker died during epoch 0
  r.completeEval(0, { valLoss: 1, valAccuracy: 0.5 });
  const next = drainTrain(r);
  assert.deepEqual(
    next.map((t) => [t.step, t.stepSize, t.minVersion]),
    [[2, 1, 2]],
    'epoch 1 starts at version 2 with steps of 1',
  );
});

test('a released task goes back to the queue and is counted as re-queued; a stale completion is ignored', () => {
  const r = run('async', 1);
  const [a, b] = drainTrain(r);
  r.release(a);
  assert.equal(r.requeued, 1);
  assert.equal(r.completeTrain(a, 1), false, 'a released batch is no longer out on lease');
  const again = r.takeTask() as TrainTask;
  assert.equal(again.batch, a.batch);
  assert.ok(r.completeTrain(again, 1));
  assert.ok(r.completeTrain(b, 1));
});

test('batches a restarted shard lost run again first, in the step they had, before the evaluation', () => {
  const r = run('sync', 2, 8, 2); // 4 batches: steps 0, 1 of 2 batches
  for (let step = 0; step < 2; step++) drainTrain(r).forEach((t) => r.completeTrain(t, 1));
  r.verified();
  r.takeTask();
  r.completeEval(0, { valLoss: 1, valAccuracy: 0.5 });
  const first = drainTrain(r); // epoch 1, step 2
  first.forEach((t) => r.completeTrain(t, 1));
  // The shard restored a checkpoint holding epoch 0 up to step 0 only.
  assert.equal(
    r.repair([
      { epoch: 0, batch: 2 },
      { epoch: 0, batch: 3 },
      { epoch: 1, batch: first[0].batch },
    ]),
    3,
  );
  assert.equal(
    r.repair([{ epoch: 0, batch: 2 }]),
    0,
    'a batch already queued for repair is not queued twice',
  );
  const repairs = drainTrain(r);
  assert.deepEqual(
    repairs.map((t) => [t.epoch, t.batch, t.step, t.stepSize, t.minVersion]),
    [
      [0, 2, 1, 2, 0],
      [0, 3, 1, 2, 0],
      [1, first[0].batch, 2, 2, 2],
    ],
    'repairs keep their epoch, batch and step; only the current epoch waits for its version',
  );
  repairs.forEach((t) => r.completeTrain(t, 1));
  assert.equal(r.scheduled, 8, 'repairs are not new scheduled batches');
  assert.equal(r.completedKeys().size, 6);
});

test('an expired lease hands its task back', () => {
  let now = 0;
  const expired: string[] = [];
  const leases = new LeaseTable<string>(
    (lease) => expired.push(lease.item),
    1_000_000,
    () => now,
  );
  const a = leases.grant('w1', 'batch-a', 100);
  leases.grant('w2', 'batch-b', 300);
  now = 150;
  leases.sweep();
  assert.deepEqual(expired, ['batch-a']);
  assert.equal(leases.complete(a.id), undefined, 'completing an expired lease finds nothing');
  now = 400;
  leases.sweep();
  assert.deepEqual(expired, ['batch-a', 'batch-b']);
  leases.close();
});
