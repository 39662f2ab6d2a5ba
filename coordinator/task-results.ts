import type { WorkResult__Output } from '../proto/gen/caviar/v1/WorkResult';
import type { Logger } from '../core/log';
import type { Task } from './trial-run';
import type { TrialRecord } from './trial-record';

/** What recording a task's result sets going. */
export interface TaskResultEffects {
  log: Logger;
  /** Worker failures in a row after which a trial fails instead of retrying. */
  maxFailuresInARow: number;
  backendOf(worker: string): string | undefined;
  reconcile(record: TrialRecord, why: string): Promise<void>;
  /** A sync training batch came back unrun for a transient reason (it may wait on a lost batch). */
  syncStepStalled(record: TrialRecord): void;
  /** The trial's epoch `epoch` has its evaluation recorded. */
  epochEnded(trial: string, epoch: number): void;
  finish(record: TrialRecord): Promise<void>;
  release(record: TrialRecord): Promise<void>;
  changed(trial: string): void;
}

/** Records on its trial what a worker reports of a task it held on a live lease. */
export function recordTaskResult(
  record: TrialRecord,
  task: Task,
  result: WorkResult__Output,
  effects: TaskResultEffects,
): void {
  if (result.error) {
    recordTaskFailure(record, task, result.worker, result.error, result.transient, effects);
    return;
  }
  record.failuresInARow = 0;
  const backend = effects.backendOf(result.worker);
  if (backend) record.backends.add(backend);
  record.workers.add(result.worker);
  addTiming(record, task, result);
  if (task.kind === 'train') {
    record.run.completeTrain(task, result.loss);
    if (record.run.evalState === 'verify') void effects.reconcile(record, 'epoch end');
  } else if (
    record.run.completeEval(task.epoch, {
      valLoss: result.loss,
      valAccuracy: result.accuracy,
      trainAccuracy: result.train_accuracy,
      trainDevLoss: result.train_dev_loss,
      trainDevAccuracy: result.train_dev_accuracy,
    })
  ) {
    const done = record.run.history.find((h) => h.epoch === task.epoch);
    record.predictMsP95 = result.predict_ms_p95;
    effects.epochEnded(record.id, task.epoch);
    effects.log.info({ trial: record.id, ...done }, 'epoch done');
    if (record.run.state === 'finishing') void effects.finish(record);
  }
  effects.changed(record.id);
}

function addTiming(record: TrialRecord, task: Task, result: WorkResult__Output): void {
  const t = record.timing;
  t.pull += result.pull_ms / 1000;
  if (task.kind === 'eval') {
    t.eval += result.compute_ms / 1000;
  } else {
    t.compute += result.compute_ms / 1000;
    t.push += result.push_ms / 1000;
  }
}

function recordTaskFailure(
  record: TrialRecord,
  task: Task,
  worker: string,
  error: string,
  transient: boolean,
  effects: TaskResultEffects,
): void {
  if (!transient) record.failuresInARow += 1;
  effects.log.warn({ trial: record.id, worker, task: task.kind, error }, 'task failed');
  record.run.release(task);
  if (transient && task.kind === 'train' && record.spec.mode === 'sync')
    effects.syncStepStalled(record);
  if (record.failuresInARow >= effects.maxFailuresInARow) {
    record.error = error;
    record.run.fail();
    void effects.release(record);
  }
  effects.changed(record.id);
}
