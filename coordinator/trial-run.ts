import type { EpochRecord } from '../proto/gen/caviar/v1/EpochRecord';
import { batchKey, batchesPerEpoch, epochBatches } from '../core/batches';
import type { ResolvedTrialSpec } from '../core/trial-spec';
import type { LrSchedule } from '../core/lr-schedule';
import {
  firstBatchOfStep,
  nextEpochLayout,
  pullVersionOfStep,
  stepOfBatch,
  stepSizeOfBatch,
  type EpochLayout,
} from '../core/sync-barrier';

export type TrialState = 'running' | 'finishing' | 'completed' | 'failed' | 'stopped';

export interface TrainTask {
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

/** A unit of work for one worker: one mini-batch's gradient, or the epoch-end evaluation. */
export type Task = TrainTask | { kind: 'eval'; epoch: number };

export interface TrialRunOptions {
  spec: ResolvedTrialSpec;
  trainCount: number;
  /**
   * sync: batches averaged per step, asked once at the trial's start and kept for every epoch, so
   * a coordinator that takes over cuts each epoch into the same steps. A dead worker's batches go
   * to the survivors, so no step hangs.
   */
  quorum: () => number;
  lr: LrSchedule;
  now?: () => number;
}

/** What a worker measured at an epoch's end. */
export interface EvalMetrics {
  valLoss: number;
  valAccuracy: number;
  trainAccuracy?: number;
  trainDevLoss?: number;
  trainDevAccuracy?: number;
}

/** The part of a run that is saved (in etcd) so another coordinator can take it over. */
export interface SavedRun {
  state: TrialState;
  epoch: number;
  layouts: EpochLayout[];
  history: EpochRecord[];
  /**
   * Epochs trained and verified whose evaluation has not come back: their records, without the
   * evaluation's figures. Absent in runs saved before evaluations overlapped training.
   */
  pendingEvals?: EpochRecord[];
  requeued: number;
  scheduled: number;
  paused: boolean;
}

/**
 * The current epoch's end: idle (batches still out), then verify (the coordinator asks the
 * shards whether they hold every batch, and has them keep a snapshot of the values). Once
 * verified, the epoch's evaluation is queued, to run on that snapshot, and the next epoch starts:
 * evaluations overlap training, as TensorFlow's side-car evaluator does with checkpoints.
 */
type EvalState = 'idle' | 'verify';

/**
 * One trial's schedule: each epoch's shuffled mini-batches handed out as tasks, then an
 * evaluation, epoch after epoch. It knows nothing of leases or the network: the coordinator
 * takes tasks, and reports each one done or released (failed, lease expired). Batches that a
 * restarted shard lost are run again as repairs, before anything else.
 */
export class TrialRun {
  state: TrialState = 'running';
  epoch = 0;
  readonly history: EpochRecord[] = [];
  requeued = 0;
  scheduled = 0;
  examples = 0;
  lastLoss = NaN;
  evalState: EvalState = 'idle';
  /** Paused trials hand out no task; their state stays as it is until resumed. */
  paused = false;
  /** The learning-rate schedule, for the history; `caviar tune` replaces it. */
  lr: LrSchedule;
  readonly batchesPerEpoch: number;
  private readonly layouts: EpochLayout[] = [];
  private batches: Uint32Array[] = [];
  private queue: number[] = [];
  private readonly leased = new Set<number>();
  private readonly done = new Set<number>();
  /** Every batch completed in any epoch, by core/batches batchKey. */
  private readonly completed = new Set<number>();
  /** Batches of earlier epochs to run again, and those of them out on lease. */
  private repairs: Array<{ epoch: number; batch: number }> = [];
  private readonly repairsLeased = new Set<number>();
  private lossSum = 0;
  private lossCount = 0;
  private epochStarted = 0;
  /**
   * Verified epochs whose evaluation is not back: their records so far, by epoch. Those not out
   * on lease wait for a worker, oldest first.
   */
  private readonly awaitingEval = new Map<number, EpochRecord>();
  private readonly evalsLeased = new Set<number>();
  /** The newest epoch verified (its evaluation queued once, whatever repairs follow). */
  private lastVerified = -1;
  private readonly now: () => number;

  constructor(private readonly options: TrialRunOptions) {
    this.now = options.now ?? Date.now;
    this.lr = options.lr;
    this.batchesPerEpoch = batchesPerEpoch(options.trainCount, options.spec.batch);
    this.startEpoch(0);
  }

  /** What a coordinator that takes over needs to go on from here (with the shards' applied sets). */
  saved(): SavedRun {
    return {
      state: this.state,
      epoch: this.epoch,
      layouts: this.layouts,
      history: this.history,
      pendingEvals: [...this.awaitingEval.values()],
      requeued: this.requeued,
      scheduled: this.scheduled,
      paused: this.paused,
    };
  }

  /**
   * A run taken over from a coordinator that died: the epochs it finished are complete, and of the
   * current one the batches every shard holds (`applied`, batch keys). The rest run again; a shard
   * that already holds one of them answers "duplicate".
   */
  static resume(options: TrialRunOptions, saved: SavedRun, applied: ReadonlySet<number>): TrialRun {
    const run = new TrialRun(options);
    run.layouts.length = 0;
    run.layouts.push(...saved.layouts);
    run.history.push(...saved.history);
    run.state = saved.state;
    run.paused = saved.paused;
    run.epoch = saved.epoch;
    run.batches = run.batchesOf(saved.epoch);
    for (let e = 0; e < saved.epoch; e++) {
      for (let b = 0; b < run.batchesPerEpoch; b++) run.completed.add(batchKey(e, b));
    }
    run.queue = [];
    for (let b = 0; b < run.batches.length; b++) {
      if (applied.has(batchKey(saved.epoch, b))) {
        run.done.add(b);
        run.completed.add(batchKey(saved.epoch, b));
        run.examples += run.batches[b].length;
      } else {
        run.queue.push(b);
      }
    }
    run.examples += saved.history.reduce((n, h) => n + Number(h.examples ?? 0), 0);
    for (const record of saved.pendingEvals ?? []) {
      const epoch = Number(record.epoch ?? 0);
      run.awaitingEval.set(epoch, record);
      run.examples += Number(record.examples ?? 0);
    }
    const evaluated = [...saved.history, ...(saved.pendingEvals ?? [])].map((h) =>
      Number(h.epoch ?? 0),
    );
    run.lastVerified = Math.max(-1, ...evaluated);
    run.requeued = saved.requeued;
    run.scheduled = saved.scheduled;
    run.checkEpochDone();
    return run;
  }

  get batchesDone(): number {
    return this.done.size;
  }

  /** Batches completed over all epochs, as (epoch, batch) keys. */
  completedKeys(): ReadonlySet<number> {
    return this.completed;
  }

  private get layout(): EpochLayout {
    return this.layouts[this.epoch];
  }

  private startEpoch(epoch: number): void {
    // The quorum is the trial's from its start: a coordinator that takes over before it saved an
    // epoch's layout must cut that epoch into the very steps the shards were already gathering.
    const previous = this.layouts[epoch - 1];
    const sync = this.options.spec.mode === 'sync';
    const quorum = previous?.quorum ?? (sync ? Math.max(1, Math.floor(this.options.quorum())) : 1);
    this.layouts[epoch] = nextEpochLayout(previous, this.batchesPerEpoch, quorum);
    this.epoch = epoch;
    this.batches = this.batchesOf(epoch);
    this.queue = this.batches.map((_, i) => i);
    this.leased.clear();
    this.done.clear();
    this.lossSum = 0;
    this.lossCount = 0;
    this.epochStarted = this.now();
    this.scheduled += this.batches.length;
  }

  private batchesOf(epoch: number): Uint32Array[] {
    const { trainCount, spec } = this.options;
    return epochBatches(trainCount, spec.batch, spec.seed, epoch);
  }

  private trainTask(epoch: number, batch: number, indices: Uint32Array): TrainTask {
    const layout = this.layouts[epoch];
    const step = stepOfBatch(layout, batch);
    const stepSize = stepSizeOfBatch(layout, batch, this.batchesPerEpoch);
    // Async pulls wait for nothing; nor does a repair (an earlier epoch's batch).
    const waits = this.options.spec.mode === 'sync' && epoch === this.epoch;
    const minVersion = pullVersionOfStep(step, !waits);
    return { kind: 'train', epoch, batch, indices, step, stepSize, minVersion };
  }

  /**
   * The next task, or undefined when every task in reach is out on lease. In sync mode a step's
   * batches are handed out once the step before it is all out on lease and every earlier one is
   * done: a worker that asks for its next batch while it pushes (as workers do) then waits for
   * that step's parameters in its pull, at the shard, instead of for two more round trips to the
   * coordinator; and no worker waits on more than the one step in flight. Nor is a worker handed
   * a batch of a step it already holds one of (`stepsHeld`): it would wait for its own next task
   * to finish the step it is pushing. Once it reports, the batch is its like anyone's.
   */
  takeTask(stepsHeld: ReadonlySet<number> = new Set()): Task | undefined {
    if (this.state !== 'running' || this.paused) return undefined;
    const repair = this.repairs.shift();
    if (repair) {
      this.repairsLeased.add(batchKey(repair.epoch, repair.batch));
      return this.trainTask(repair.epoch, repair.batch, this.batchesOf(repair.epoch)[repair.batch]);
    }
    // Evaluations wait while repairs run: a restarted shard's values lack those batches.
    const repairing = this.repairsLeased.size > 0;
    const evalEpoch = repairing ? undefined : this.oldestEvalWaiting();
    if (evalEpoch !== undefined) {
      this.evalsLeased.add(evalEpoch);
      return { kind: 'eval', epoch: evalEpoch };
    }
    const next = this.queue[0];
    if (next === undefined) return undefined;
    // The queue is in order: every batch before `next` is out on lease or done (a sync lease
    // may also hold later steps' batches, taken out of the queue's middle by takeStepBatch).
    if (this.options.spec.mode === 'sync') {
      if (!this.stepsDoneBefore(Math.max(0, next - this.layout.quorum))) return undefined;
      if (stepsHeld.has(this.stepOf(next))) return undefined;
    }
    this.queue.shift();
    this.leased.add(next);
    return this.trainTask(this.epoch, next, this.batches[next]);
  }

  /**
   * Sync mode: the first queued batch of `step` of `epoch`, now leased, or undefined when none is
   * queued (or `epoch` is not the current one). A lease then runs one batch of each of several
   * consecutive steps, in order.
   */
  takeStepBatch(epoch: number, step: number): TrainTask | undefined {
    if (this.state !== 'running' || this.paused || this.options.spec.mode !== 'sync') {
      return undefined;
    }
    if (epoch !== this.epoch) return undefined;
    const at = this.queue.findIndex((b) => this.stepOf(b) === step);
    if (at < 0) return undefined;
    const [batch] = this.queue.splice(at, 1);
    this.leased.add(batch);
    return this.trainTask(this.epoch, batch, this.batches[batch]);
  }

  /** Sync mode: how many batches of `step` of `epoch` wait in the queue (0 for another epoch). */
  queuedInStep(epoch: number, step: number): number {
    if (epoch !== this.epoch) return 0;
    return this.queue.filter((b) => this.stepOf(b) === step).length;
  }

  /** The global sync step of this epoch's `batch`. */
  private stepOf(batch: number): number {
    return stepOfBatch(this.layout, batch);
  }

  private oldestEvalWaiting(): number | undefined {
    let oldest: number | undefined;
    for (const epoch of this.awaitingEval.keys()) {
      if (!this.evalsLeased.has(epoch) && (oldest === undefined || epoch < oldest)) oldest = epoch;
    }
    return oldest;
  }

  /** Training batches waiting to be handed out (this epoch's and repairs). */
  queuedBatches(): number {
    return this.queue.length + this.repairs.length;
  }

  private stepsDoneBefore(batch: number): boolean {
    const stepStart = firstBatchOfStep(this.layout, batch);
    for (let b = 0; b < stepStart; b++) if (!this.done.has(b)) return false;
    return true;
  }

  /** A task came back unfinished (worker error, lease expired): it goes to the front of the queue. */
  release(task: Task): void {
    if (task.kind === 'eval') {
      this.evalsLeased.delete(task.epoch);
      return;
    }
    if (this.repairsLeased.delete(batchKey(task.epoch, task.batch))) {
      this.repairs.unshift({ epoch: task.epoch, batch: task.batch });
      this.requeued += 1;
      return;
    }
    if (task.epoch !== this.epoch || !this.leased.delete(task.batch)) return;
    this.queue.unshift(task.batch);
    this.queue.sort((a, b) => a - b);
    this.requeued += 1;
  }

  /** Records a trained batch; returns false for a batch that is not (or no longer) out on lease. */
  completeTrain(task: TrainTask, loss: number): boolean {
    if (this.repairsLeased.delete(batchKey(task.epoch, task.batch))) {
      this.completed.add(batchKey(task.epoch, task.batch));
      this.checkEpochDone();
      this.maybeFinish();
      return true;
    }
    if (task.epoch !== this.epoch || !this.leased.delete(task.batch)) return false;
    this.done.add(task.batch);
    this.completed.add(batchKey(task.epoch, task.batch));
    this.examples += task.indices.length;
    if (Number.isFinite(loss)) {
      this.lossSum += loss;
      this.lossCount += 1;
      this.lastLoss = loss;
    }
    this.checkEpochDone();
    return true;
  }

  private checkEpochDone(): void {
    const quiet = this.repairs.length === 0 && this.repairsLeased.size === 0;
    const finished = this.done.size === this.batchesPerEpoch;
    if (this.evalState === 'idle' && quiet && finished && this.epoch > this.lastVerified)
      this.evalState = 'verify';
  }

  /**
   * Batches a shard does not hold although they completed (it restarted from an older
   * checkpoint): they run again. The shards that hold them answer "duplicate", the restored one
   * applies them, so each shard still applies every batch exactly once.
   */
  repair(missing: ReadonlyArray<{ epoch: number; batch: number }>): number {
    let count = 0;
    for (const { epoch, batch } of missing) {
      const key = batchKey(epoch, batch);
      if (!this.completed.has(key) || this.repairsLeased.has(key)) continue;
      if (this.repairs.some((r) => r.epoch === epoch && r.batch === batch)) continue;
      this.completed.delete(key);
      count += 1;
      if (epoch === this.epoch) {
        this.done.delete(batch);
        this.examples -= this.batches[batch].length;
        this.queue.push(batch);
        this.queue.sort((a, b) => a - b);
        // The last epoch, verified already: its evaluation waits for the batches and a new check.
        if (this.lastVerified === epoch) this.withdrawEval(epoch);
      } else {
        this.repairs.push({ epoch, batch });
      }
    }
    if (count > 0) this.evalState = 'idle';
    this.repairs.sort((a, b) => a.epoch - b.epoch || a.batch - b.batch);
    return count;
  }

  private withdrawEval(epoch: number): void {
    this.lastVerified = epoch - 1;
    this.awaitingEval.delete(epoch);
    // One out on lease now comes back refused by completeEval.
    this.evalsLeased.delete(epoch);
  }

  /**
   * The shards hold every completed batch of `epoch` (and a snapshot of its values): its
   * evaluation is queued and the next epoch starts. A check made for another epoch, or while
   * batches were still out, changes nothing.
   */
  verified(epoch: number): void {
    if (this.evalState !== 'verify' || epoch !== this.epoch) return;
    this.evalState = 'idle';
    this.lastVerified = epoch;
    this.awaitingEval.set(epoch, {
      epoch,
      train_loss: this.lossCount ? this.lossSum / this.lossCount : NaN,
      seconds: (this.now() - this.epochStarted) / 1000,
      examples: this.batches.reduce((n, b) => n + b.length, 0),
      lr: this.lr(epoch),
    });
    if (epoch + 1 < this.options.spec.epochs) this.startEpoch(epoch + 1);
  }

  /** Records an epoch's evaluation; after the last epoch's, the run is finishing. */
  completeEval(epoch: number, m: EvalMetrics): boolean {
    const record = this.awaitingEval.get(epoch);
    if (!record || !this.evalsLeased.delete(epoch)) return false;
    this.awaitingEval.delete(epoch);
    this.history.push({
      ...record,
      val_loss: m.valLoss,
      val_accuracy: m.valAccuracy,
      train_accuracy: m.trainAccuracy ?? 0,
      train_dev_loss: m.trainDevLoss ?? 0,
      train_dev_accuracy: m.trainDevAccuracy ?? 0,
    });
    this.history.sort((a, b) => Number(a.epoch ?? 0) - Number(b.epoch ?? 0));
    this.maybeFinish();
    return true;
  }

  /** After the last epoch's evaluation, and with no batch left to run, the run is finishing. */
  private maybeFinish(): void {
    const last = this.options.spec.epochs - 1;
    const evaluated = this.lastVerified === last && this.awaitingEval.size === 0;
    const idle = this.queue.length === 0 && this.leased.size === 0;
    const repaired = this.repairs.length === 0 && this.repairsLeased.size === 0;
    if (this.state === 'running' && evaluated && idle && repaired) this.state = 'finishing';
  }

  stop(): void {
    if (this.state === 'running' || this.state === 'finishing') this.state = 'stopped';
  }

  fail(): void {
    if (this.state === 'running' || this.state === 'finishing') this.state = 'failed';
  }
}
