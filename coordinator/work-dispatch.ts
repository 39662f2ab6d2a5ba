import type * as grpc from '@grpc/grpc-js';
import type { Work } from '../proto/gen/caviar/v1/Work';
import type { WorkResult__Output } from '../proto/gen/caviar/v1/WorkResult';
import type { Logger } from '../core/log';
import { trialSpecMessage } from '../core/trial-spec';
import { LeaseTable, type Lease } from './leases';
import type { Task } from './trial-run';
import type { TrialRecord } from './trial-record';
import type { TrialTable } from './trial-table';
import type { ClusterRoster } from './cluster-roster';

interface LeasedTask {
  trial: string;
  task: Task;
}

const MAX_WAIT_MS = 5_000;

export interface WorkDispatcherOptions {
  trials: TrialTable;
  roster: ClusterRoster;
  log: Logger;
  /** How long a worker may hold a task before it goes to another worker. */
  leaseMs: number;
  /** A worker returned a task on a live lease, done or failed (`result.error`). */
  taskReturned(record: TrialRecord, task: Task, result: WorkResult__Output): void;
  changed(trial: string): void;
}

/**
 * Hands the running trials' tasks to workers on leases (AcquireWork, a long poll) and takes
 * them back: completed (CompleteWork), expired, or revoked when their worker or trial goes.
 */
export class WorkDispatcher {
  private readonly leases: LeaseTable<LeasedTask>;
  /** Long polls waiting for a task; each returns true once it has been answered. */
  private waiters: Array<() => boolean> = [];
  private roundRobin = 0;

  constructor(private readonly options: WorkDispatcherOptions) {
    this.leases = new LeaseTable((lease) => this.onLeaseExpired(lease));
  }

  /** Something changed that may have made a task available: the waiting polls try again. */
  wake(): void {
    this.waiters = this.waiters.filter((w) => !w());
  }

  close(): void {
    this.leases.close();
    for (const waiter of this.waiters) waiter();
  }

  /** The next task of any running trial, in round-robin order so no trial starves. */
  private takeWork(worker: string): Work | undefined {
    if (!this.options.roster.mayTakeWork(worker)) return undefined;
    const running = this.options.trials.runningIds();
    for (let k = 0; k < running.length; k++) {
      const id = running[(this.roundRobin + k) % running.length];
      const record = this.options.trials.get(id);
      const task = record.run.takeTask();
      if (!task) continue;
      this.roundRobin = (this.roundRobin + k + 1) % Math.max(1, running.length);
      const lease = this.leases.grant(worker, { trial: id, task }, this.options.leaseMs);
      return this.workMessage(record, lease.id, task);
    }
    return undefined;
  }

  private workMessage(record: TrialRecord, lease: string, task: Task): Work {
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
    const lease = this.leases.complete(result.lease);
    if (!lease) return false;
    const record = this.options.trials.find(lease.item.trial);
    if (!record) return false;
    this.options.taskReturned(record, lease.item.task, result);
    return true;
  }

  /** A worker's lease ended: its tasks go back to their queues now, not when their leases time out. */
  workerLeft(worker: string): void {
    for (const lease of this.leases.revoke((l) => l.worker === worker)) {
      const record = this.options.trials.find(lease.item.trial);
      record?.run.release(lease.item.task);
      if (record) this.options.changed(record.id);
    }
  }

  /** The trial ended: its outstanding tasks are void. */
  trialEnded(trial: string): void {
    this.leases.revoke((l) => l.item.trial === trial);
  }

  private onLeaseExpired(lease: Lease<LeasedTask>): void {
    const record = this.options.trials.find(lease.item.trial);
    if (!record) return;
    this.options.log.warn(
      { trial: record.id, worker: lease.worker, task: lease.item.task.kind },
      'lease expired',
    );
    record.run.release(lease.item.task);
    this.options.changed(record.id);
  }
}
