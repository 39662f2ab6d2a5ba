import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrialRun, type Task } from '../../coordinator/trial-run';
import { BatchLeaseTable } from '../../coordinator/batch-leases';
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
  r.verified(r.epoch);
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
  r.verified(r.epoch);
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

test('sync: a step is handed out once the one before is out and all earlier ones are done', () => {
  const r = run('sync', 2, 10, 2); // 5 batches: steps of 2, 2, 1
  const first = drainTrain(r);
  assert.deepEqual(
    first.map((t) => [t.step, t.stepSize, t.minVersion]),
    [
      [0, 2, 0],
      [0, 2, 0],
      [1, 2, 1],
      [1, 2, 1],
    ],
    'step 1 goes out with step 0 on lease: its pulls wait for version 1 at the shards',
  );
  assert.equal(r.takeTask(), undefined, 'step 2 waits for all of step 0');
  r.completeTrain(first[0], 1);
  assert.equal(r.takeTask(), undefined, 'step 2 waits for all of step 0');
  r.completeTrain(first[1], 1);
  const third = drainTrain(r);
  assert.deepEqual(
    third.map((t) => [t.step, t.stepSize, t.minVersion]),
    [[2, 1, 2]],
  );
  first.slice(2).forEach((t) => r.completeTrain(t, 1));
  r.completeTrain(third[0], 1);
  r.verified(r.epoch);
  r.takeTask();
  r.completeEval(0, { valLoss: 1, valAccuracy: 0.5 });
  assert.equal(drainTrain(r)[0].minVersion, 3, 'epoch 2 starts after the 3 steps of epoch 1');
});

test("sync: the quorum is the trial's from its start, whoever is live at a later epoch", () => {
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
  live = 1; // a worker died during epoch 0
  r.verified(r.epoch); // epoch 1 starts here, cut into steps of 2 all the same
  assert.deepEqual(r.takeTask(), { kind: 'eval', epoch: 0 });
  const next = drainTrain(r);
  assert.deepEqual(
    next.map((t) => [t.step, t.stepSize, t.minVersion]),
    [
      [2, 2, 2],
      [2, 2, 2],
      [3, 2, 3],
      [3, 2, 3],
    ],
    'epoch 1 starts at version 2 with steps of 2 (the second out while the first runs)',
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
  r.verified(r.epoch);
  r.takeTask();
  r.completeEval(0, { valLoss: 1, valAccuracy: 0.5 });
  const first = drainTrain(r).slice(0, 2); // epoch 1, step 2 (step 3 is out too)
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
  const leases = new BatchLeaseTable<string>(
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

test("an epoch's evaluation overlaps the next epoch's training; the run finishes after the last one", () => {
  const r = run('async', 1, 4, 2, 2); // 2 batches an epoch
  drainTrain(r).forEach((t) => r.completeTrain(t, 1));
  r.verified(r.epoch);
  assert.equal(r.epoch, 1, 'the next epoch starts once the shards verified (and kept a snapshot)');
  const eval0 = r.takeTask();
  assert.deepEqual(eval0, { kind: 'eval', epoch: 0 }, 'the evaluation goes out first');
  const epoch1 = drainTrain(r);
  assert.equal(epoch1.length, 2, "epoch 1's batches go out while epoch 0 is evaluated");
  r.release(eval0!); // its worker died
  assert.deepEqual(
    r.takeTask(),
    { kind: 'eval', epoch: 0 },
    'a released evaluation goes out again',
  );
  epoch1.forEach((t) => r.completeTrain(t, 2));
  assert.equal(r.evalState, 'verify');
  r.verified(r.epoch);
  assert.deepEqual(r.takeTask(), { kind: 'eval', epoch: 1 });
  assert.ok(r.completeEval(1, { valLoss: 0.4, valAccuracy: 0.8 }));
  assert.equal(r.state, 'running', "epoch 0's evaluation is still out");
  assert.ok(r.completeEval(0, { valLoss: 0.5, valAccuracy: 0.7 }));
  assert.equal(r.state, 'finishing');
  assert.deepEqual(
    r.history.map((h) => [h.epoch, h.train_loss, h.val_accuracy]),
    [
      [0, 1, 0.7],
      [1, 2, 0.8],
    ],
    'the history is in epoch order, each with its own training loss',
  );
  assert.equal(r.completeEval(0, { valLoss: 0, valAccuracy: 1 }), false, 'no second record');
});

test('a run taken over with an evaluation outstanding hands it out again', () => {
  const r = run('async', 1, 4, 2, 3);
  drainTrain(r).forEach((t) => r.completeTrain(t, 1));
  r.verified(r.epoch);
  r.takeTask(); // epoch 0's evaluation, lost with the coordinator
  const saved = JSON.parse(JSON.stringify(r.saved())) as ReturnType<TrialRun['saved']>;
  const spec = resolveTrialSpec({
    dataset: 'synthetic:spirals',
    model: 'mlp:4',
    batch: 2,
    epochs: 3,
    mode: 'async',
    seed: 3,
  });
  const options = { spec, trainCount: 4, quorum: () => 1, lr: () => 0.1 };
  const resumed = TrialRun.resume(options, saved, new Set());
  assert.equal(resumed.epoch, 1);
  assert.deepEqual(resumed.takeTask(), { kind: 'eval', epoch: 0 });
  assert.ok(resumed.completeEval(0, { valLoss: 0.5, valAccuracy: 0.7 }));
  assert.deepEqual(
    resumed.history.map((h) => [h.epoch, h.train_loss]),
    [[0, 1]],
  );
  assert.equal(drainTrain(resumed).length, 2, "epoch 1's batches all run again");
});

test("a restarted shard's lost batches of the last, verified epoch run again before the run finishes", () => {
  const r = run('async', 1, 4, 2, 1); // one epoch of 2 batches
  const tasks = drainTrain(r);
  tasks.forEach((t) => r.completeTrain(t, 1));
  r.verified(1);
  assert.equal(r.takeTask(), undefined, 'a check of another epoch verifies nothing');
  r.verified(0);
  assert.deepEqual(r.takeTask(), { kind: 'eval', epoch: 0 });
  assert.equal(r.repair([{ epoch: 0, batch: tasks[0].batch }]), 1);
  const evalMetrics = { valLoss: 0.5, valAccuracy: 0.7 };
  assert.equal(r.completeEval(0, evalMetrics), false, 'the evaluation out was withdrawn');
  const again = drainTrain(r);
  assert.deepEqual(
    again.map((t) => t.batch),
    [tasks[0].batch],
  );
  assert.equal(r.state, 'running');
  r.completeTrain(again[0], 1);
  assert.equal(r.evalState, 'verify', 'the epoch is checked again');
  r.verified(0);
  assert.deepEqual(r.takeTask(), { kind: 'eval', epoch: 0 });
  assert.ok(r.completeEval(0, evalMetrics));
  assert.equal(r.state, 'finishing');
  assert.equal(r.history.length, 1);
});
