import type * as grpc from '@grpc/grpc-js';
import type { Work } from '../proto/gen/caviar/v1/Work';
import type { WorkResult__Output } from '../proto/gen/caviar/v1/WorkResult';
import type { Logger } from '../core/log';
import { trialSpecMessage } from '../core/trial-spec';
import { BatchLeaseTable, type BatchLease } from './batch-leases';
import type { Task, TrainTask } from './trial-run';
import type { TrialRecord } from './trial-record';
import type { TrialTable } from './trial-table';
import type { ClusterRoster } from './cluster-roster';

interface LeasedTasks {
  trial: string;
  /** One task, or (async mode) several training batches run in order and reported together. */
  tasks: Task[];
  /** ssp:N: the trial's StalenessGate mark at this lease's grant. */
  mark?: number;
}

const MAX_WAIT_MS = 5_000;

/**
 * Training batches per lease (sync: one of each of that many consecutive steps): AcquireWork and
 * CompleteWork cost the coordinator and the worker about a millisecond of CPU per lease, a tenth
 * of a batch's whole cost.
 */
export const DEFAULT_BATCHES_PER_LEASE = 4;

export interface WorkDispatcherOptions {
  trials: TrialTable;
  roster: ClusterRoster;
  log: Logger;
  /** A batch lease's length: how long a worker may hold a task before it goes to another. */
  leaseMs: number;
  /** At most this many training batches per lease (sync: of as many steps). Defaults to 1. */
  batchesPerLease?: number;
  /** A worker returned a task on a live lease, done or failed (`result.error`). */
  taskReturned(record: TrialRecord, task: Task, result: WorkResult__Output): void;
  changed(trial: string): void;
}

/** ssp:N: how many training batches a lease may take of the trial now, given `others` (else: no limit). */
function stalenessAllowance(
  record: TrialRecord,
  others: ReadonlyArray<BatchLease<LeasedTasks>>,
): number {
  const gate = record.stalenessGate;
  return gate ? gate.allowance(others.flatMap((l) => l.item.mark ?? [])) : Infinity;
}

/** ssp:N: the gate's mark of a lease of `tasks` granted now, beside `others` (see StalenessGate). */
function stalenessMark(
  record: TrialRecord,
  others: ReadonlyArray<BatchLease<LeasedTasks>>,
  tasks: readonly Task[],
): number | undefined {
  if (!record.stalenessGate) return undefined;
  const trainCount = (ts: readonly Task[]) => ts.filter((t) => t.kind === 'train').length;
  const outstanding = others.reduce((sum, l) => sum + trainCount(l.item.tasks), 0);
  return record.stalenessGate.grant(trainCount(tasks), outstanding);
}

/**
 * Hands the running trials' tasks to workers on leases (AcquireWork, a long poll) and takes
 * them back: completed (CompleteWork), expired, or revoked when their worker or trial goes.
 */
export class WorkDispatcher {
  private readonly batchLeases: BatchLeaseTable<LeasedTasks>;
  /** Long polls waiting for a task; each returns true once it has been answered. */
  private waiters: Array<() => boolean> = [];
  private roundRobin = 0;

  constructor(private readonly options: WorkDispatcherOptions) {
    this.batchLeases = new BatchLeaseTable((lease) => this.onBatchLeaseExpired(lease));
  }

  /** Something changed that may have made a task available: the waiting polls try again. */
  wake(): void {
    this.waiters = this.waiters.filter((w) => !w());
  }

  close(): void {
    this.batchLeases.close();
    for (const waiter of this.waiters) waiter();
  }

  /** The next task of any running trial, in round-robin order so no trial starves. */
  private takeWork(worker: string): Work | undefined {
    if (!this.options.roster.mayTakeWork(worker)) return undefined;
    const running = this.options.trials.runningIds();
    for (let k = 0; k < running.length; k++) {
      const id = running[(this.roundRobin + k) % running.length];
      const record = this.options.trials.get(id);
      const held = record.spec.mode === 'sync' ? this.stepsHeld(worker, id) : undefined;
      // ssp:N: the other workers' live leases of the trial, which bound this one.
      const others = record.stalenessGate ? this.othersLeases(worker, record) : [];
      const allowance = stalenessAllowance(record, others);
      if (allowance < 1) continue;
      const task = record.run.takeTask(held);
      if (!task) continue;
      this.roundRobin = (this.roundRobin + k + 1) % Math.max(1, running.length);
      const tasks = [task, ...this.moreBatches(record, task, allowance - 1)];
      const mark = stalenessMark(record, others, tasks);
      const lease = this.batchLeases.grant(
        worker,
        { trial: id, tasks, mark },
        this.options.leaseMs,
      );
      return this.workMessage(record, lease.id, tasks);
    }
    return undefined;
  }

  private othersLeases(worker: string, record: TrialRecord): Array<BatchLease<LeasedTasks>> {
    return this.batchLeases.where((l) => l.item.trial === record.id && l.worker !== worker);
  }

  /** The sync steps of `trial` whose batches `worker` holds on a live lease. */
  private stepsHeld(worker: string, trial: string): Set<number> {
    const steps = new Set<number>();
    for (const lease of this.batchLeases.heldBy(worker)) {
      if (lease.item.trial !== trial) continue;
      for (const task of lease.item.tasks) if (task.kind === 'train') steps.add(task.step);
    }
    return steps;
  }

  /**
   * Further training batches for the same lease. Async mode: the next in the queue, as many as
   * batchesPerLease allows while every live worker still gets a share of what is left of the
   * epoch (so none idles at its end while another works through a long lease), and no more than
   * `allowed` (ssp:N's gate). Sync: laterSteps.
   */
  private moreBatches(record: TrialRecord, first: Task, allowed: number): TrainTask[] {
    if (first.kind !== 'train') return [];
    if (record.spec.mode === 'sync') return this.laterSteps(record, first);
    const share = Math.floor(
      record.run.queuedBatches() / Math.max(1, this.options.roster.liveWorkerCount()),
    );
    const extra = Math.min((this.options.batchesPerLease ?? 1) - 1, share, allowed);
    const more: TrainTask[] = [];
    while (more.length < extra) {
      const task = record.run.takeTask();
      if (!task) break;
      if (task.kind !== 'train') {
        record.run.release(task);
        break;
      }
      more.push(task);
    }
    return more;
  }

  /**
   * Sync mode: a batch of each of the steps after the first task's, up to batchesPerLease in all,
   * for the worker to run in order (each batch's pull waits for the step before it). The steps'
   * other batches stay queued for the other workers, so a lease only reaches past a step whose
   * queued batches the other live workers can take: a worker alone (its peers died) must run
   * the rest of each step itself before its next. A repair, of an earlier epoch, gets none.
   */
  private laterSteps(record: TrialRecord, first: TrainTask): TrainTask[] {
    const others = Math.max(0, this.options.roster.liveWorkerCount() - 1);
    const more: TrainTask[] = [];
    for (let k = 1; k < (this.options.batchesPerLease ?? 1); k++) {
      if (record.run.queuedInStep(first.epoch, first.step + k - 1) > others) break;
      const task = record.run.takeStepBatch(first.epoch, first.step + k);
      if (!task) break;
      more.push(task);
    }
    return more;
  }

  private workMessage(record: TrialRecord, lease: string, [task, ...more]: Task[]): Work {
    const common = {
      lease,
      trial: record.id,
      spec: trialSpecMessage(record.spec),
      epoch: task.epoch,
      lease_ms: this.options.leaseMs,
      shards: record.shards,
    };
    if (task.kind === 'eval') return { kind: 'eval', ...common };
    return {
      kind: 'train',
      ...common,
      batch: task.batch,
      indices: Array.from(task.indices),
      step: task.step,
      step_size: task.stepSize,
      min_version: task.minVersion,
      more: more.flatMap((t) =>
        t.kind === 'train'
          ? [
              {
                epoch: t.epoch,
                batch: t.batch,
                indices: Array.from(t.indices),
                step: t.step,
                step_size: t.stepSize,
                min_version: t.minVersion,
              },
            ]
          : [],
      ),
    };
  }

  acquireWork(
    call: grpc.ServerUnaryCall<{ worker: string; wait_ms: number }, Work>,
    callback: grpc.sendUnaryData<Work>,
  ): void {
    const { worker } = call.request;
    this.options.roster.touchWorker(worker);
    const immediate = this.takeWork(worker);
    if (immediate) return callback(null, immediate);
    let answered = false;
    const answer = (work: Work): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      callback(null, work);
    };
    const timer = setTimeout(
      () => answer({ kind: 'none' }),
      Math.min(call.request.wait_ms || 1_000, MAX_WAIT_MS),
    );
    this.waiters.push(() => {
      if (answered) return true;
      if (call.cancelled) {
        answered = true;
        clearTimeout(timer);
        return true;
      }
      const work = this.takeWork(worker);
      if (work) answer(work);
      return answered;
    });
  }

  /** False for a lease that expired or was revoked: the task went or goes to another worker. */
  completeWork(result: WorkResult__Output): boolean {
    this.options.roster.touchWorker(result.worker);
    const lease = this.batchLeases.complete(result.lease);
    if (!lease) return false;
    const record = this.options.trials.find(lease.item.trial);
    if (!record) return false;
    const [first, ...more] = lease.item.tasks;
    if (result.error) {
      // One failure, counted once; the lease's other batches simply go back to the queue.
      for (const task of more.reverse()) record.run.release(task);
      this.options.taskReturned(record, first, result);
      return true;
    }
    this.options.taskReturned(record, first, result);
    // The lease's timings and examples were counted with its first batch.
    const rest = { ...result, compute_ms: 0, pull_ms: 0, push_ms: 0 };
    more.forEach((task, i) =>
      this.options.taskReturned(record, task, { ...rest, loss: result.more_losses[i] ?? NaN }),
    );
    return true;
  }

  /** A worker's lease ended: its tasks go back to their queues now, not when their leases time out. */
  workerLeft(worker: string): void {
    for (const lease of this.batchLeases.revoke((l) => l.worker === worker)) {
      const record = this.options.trials.find(lease.item.trial);
      if (!record) continue;
      for (const task of [...lease.item.tasks].reverse()) record.run.release(task);
      this.options.changed(record.id);
    }
  }

  /** The trial ended: its outstanding tasks are void. */
  trialEnded(trial: string): void {
    this.batchLeases.revoke((l) => l.item.trial === trial);
  }

  private onBatchLeaseExpired(lease: BatchLease<LeasedTasks>): void {
    const record = this.options.trials.find(lease.item.trial);
    if (!record) return;
    const { tasks } = lease.item;
    this.options.log.warn(
      { trial: record.id, worker: lease.worker, task: tasks[0].kind, batches: tasks.length },
      'lease expired',
    );
    for (const task of [...tasks].reverse()) record.run.release(task);
    this.options.changed(record.id);
  }
}
