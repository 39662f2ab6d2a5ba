import type { EpochRecord } from '../proto/gen/caviar/v1/EpochRecord';
import { batchesPerEpoch, epochBatches } from '../core/batches';
import type { ResolvedTrialSpec } from '../core/trial-spec';
import type { LrSchedule } from '../core/lr-schedule';

export type TrialState = 'running' | 'finishing' | 'completed' | 'failed' | 'stopped';

/** A unit of work for one worker: one mini-batch's gradient, or the epoch-end evaluation. */
export type Task =
  | {
      kind: 'train';
      epoch: number;
      batch: number;
      indices: Uint32Array;
      /** sync: the global step this batch belongs to and how many batches it averages. */
      step: number;
      stepSize: number;
      /** The shard version the worker must pull before computing (sync: all earlier steps applied). */
      minVersion: number;
    }
  | { kind: 'eval'; epoch: number };

export interface TrialRunOptions {
  spec: ResolvedTrialSpec;
  trainCount: number;
  /**
   * sync: batches averaged per step. Asked at each epoch's start, so the quorum follows the live
   * workers (a dead worker's batches of the current epoch go to the survivors, so no step hangs).
   */
  quorum: () => number;
  lr: LrSchedule;
  now?: () => number;
}

/**
 * One trial's schedule: each epoch's shuffled mini-batches handed out as tasks, then an
 * evaluation, epoch after epoch. It knows nothing of leases or the network: the coordinator
 * takes tasks, and reports each one done or released (failed, lease expired).
 */
export class TrialRun {
  state: TrialState = 'running';
  epoch = 0;
  readonly history: EpochRecord[] = [];
  requeued = 0;
  scheduled = 0;
  examples = 0;
  lastLoss = NaN;
  readonly batchesPerEpoch: number;
  /** Batches per sync step in this epoch (1 in async mode). */
  private quorum = 1;
  /** Steps of the earlier epochs: the shard version this epoch's first step starts from. */
  private stepBase = 0;
  private batches: Uint32Array[] = [];
  private queue: number[] = [];
  private readonly leased = new Set<number>();
  private readonly done = new Set<number>();
  private evalState: 'idle' | 'pending' | 'leased' = 'idle';
  private lossSum = 0;
  private lossCount = 0;
  private epochStarted = 0;
  private readonly now: () => number;

  constructor(private readonly options: TrialRunOptions) {
    this.now = options.now ?? Date.now;
    this.batchesPerEpoch = batchesPerEpoch(options.trainCount, options.spec.batch);
    this.startEpoch(0);
  }

  get batchesDone(): number {
    return this.done.size;
  }

  private startEpoch(epoch: number): void {
    if (epoch > 0) this.stepBase += Math.ceil(this.batchesPerEpoch / this.quorum);
    this.quorum =
      this.options.spec.mode === 'sync' ? Math.max(1, Math.floor(this.options.quorum())) : 1;
    this.epoch = epoch;
    this.batches = epochBatches(
      this.options.trainCount,
      this.options.spec.batch,
      this.options.spec.seed,
      epoch,
    );
    this.queue = this.batches.map((_, i) => i);
    this.leased.clear();
    this.done.clear();
    this.lossSum = 0;
    this.lossCount = 0;
    this.epochStarted = this.now();
    this.scheduled += this.batches.length;
  }

  private stepOf(batch: number): number {
    return Math.floor(batch / this.quorum);
  }

  /**
   * The next task, or undefined when every task in reach is out on lease. In sync mode a step's
   * batches are handed out only once every earlier step is done, so no worker sits on a lease
   * waiting for parameters that another worker's batch still holds back.
   */
  takeTask(): Task | undefined {
    if (this.state !== 'running') return undefined;
    if (this.evalState === 'pending') {
      this.evalState = 'leased';
      return { kind: 'eval', epoch: this.epoch };
    }
    const next = this.queue[0];
    if (next === undefined) return undefined;
    const step = this.stepOf(next);
    if (this.options.spec.mode === 'sync' && !this.stepsDoneBefore(step)) return undefined;
    this.queue.shift();
    this.leased.add(next);
    const stepStart = step * this.quorum;
    const stepSize = Math.min(this.quorum, this.batchesPerEpoch - stepStart);
    const globalStep = this.stepBase + step;
    return {
      kind: 'train',
      epoch: this.epoch,
      batch: next,
      indices: this.batches[next],
      step: globalStep,
      stepSize,
      minVersion: this.options.spec.mode === 'sync' ? globalStep : 0,
    };
  }

  private stepsDoneBefore(step: number): boolean {
    for (let b = 0; b < step * this.quorum; b++) if (!this.done.has(b)) return false;
    return true;
  }

  /** A task came back unfinished (worker error, lease expired): it goes to the front of the queue. */
  release(task: Task): void {
    if (task.kind === 'eval') {
      if (task.epoch === this.epoch && this.evalState === 'leased') this.evalState = 'pending';
      return;
    }
    if (task.epoch !== this.epoch || !this.leased.delete(task.batch)) return;
    this.queue.unshift(task.batch);
    this.queue.sort((a, b) => a - b);
    this.requeued += 1;
  }

  /** Records a trained batch; returns false for a batch that is not (or no longer) out on lease. */
  completeTrain(task: Extract<Task, { kind: 'train' }>, loss: number): boolean {
    if (task.epoch !== this.epoch || !this.leased.delete(task.batch)) return false;
    this.done.add(task.batch);
    this.examples += task.indices.length;
    if (Number.isFinite(loss)) {
      this.lossSum += loss;
      this.lossCount += 1;
      this.lastLoss = loss;
    }
    if (this.done.size === this.batchesPerEpoch) this.evalState = 'pending';
    return true;
  }

  /** Records the epoch-end evaluation and moves on to the next epoch, or to finishing. */
  completeEval(epoch: number, valLoss: number, valAccuracy: number): boolean {
    if (epoch !== this.epoch || this.evalState !== 'leased') return false;
    this.evalState = 'idle';
    this.history.push({
      epoch,
      train_loss: this.lossCount ? this.lossSum / this.lossCount : NaN,
      val_loss: valLoss,
      val_accuracy: valAccuracy,
      seconds: (this.now() - this.epochStarted) / 1000,
      examples: this.done.size === 0 ? 0 : this.batches.reduce((n, b) => n + b.length, 0),
      lr: this.options.lr(epoch),
    });
    if (epoch + 1 >= this.options.spec.epochs) this.state = 'finishing';
    else this.startEpoch(epoch + 1);
    return true;
  }

  stop(): void {
    if (this.state === 'running' || this.state === 'finishing') this.state = 'stopped';
  }

  fail(): void {
    if (this.state === 'running' || this.state === 'finishing') this.state = 'failed';
  }
}
