import { sliceElements } from '../core/placement';
import { FailedPreconditionError } from '../core/errors';
import { batchKey } from '../core/batches';
import { parseLrDecay, type LrSchedule } from '../core/lr-schedule';
import { validateOptimizerConfig, type OptimizerConfig } from '../core/optimizer-config';
import { createOptimizerState, optimizerFor, type Optimizer } from './optimizers';
import { RefusedInputError, type RefusalReason } from './refusal';
import type { SliceRange } from './slice-assembler';
import { ReadWriteLock } from './read-write-lock';
import { drain } from '../core/yielding';
import { isStepApplied } from '../core/sync-barrier';

export type ConsistencyMode = 'sync' | 'async';

export function isConsistencyMode(mode: string): mode is ConsistencyMode {
  return mode === 'sync' || mode === 'async';
}

/** One slice of a trial's parameters on this shard, with its optimizer state. */
export interface TrialSlice extends SliceRange {
  readonly values: Float32Array;
  readonly state: Float32Array[];
  /**
   * Set for BatchNorm's moving statistics: pushes carry the batch's statistic, folded in as
   * value = m·value + (1-m)·statistic, once per applied batch (or sync step, on the step's mean).
   */
  readonly movingAverage?: number;
}

/** The header fields of a push that the shard's bookkeeping reads. */
export interface PushMeta {
  epoch: number;
  batch: number;
  /** sync only: the step this batch belongs to and how many batches make it. */
  step: number;
  step_size: number;
  /** The trial's version the worker's values had when it computed the gradient (none: current). */
  version?: number;
  /** Who pushed: under ssp:N a worker's own earlier pushes are not staleness (see stalenessOf). */
  worker?: string;
}

export interface PushOutcome {
  accepted: boolean;
  duplicate: boolean;
  version: number;
  /** An accepted push's staleness: other workers' updates its values missed. */
  staleness?: number;
}

/** Versions of a worker's latest accepted pushes kept (ssp:N): more than it ever has in flight. */
const OWN_VERSIONS_KEPT = 4;

/**
 * A pushed gradient aligned with the trial's slices, read a piece at a time, so a gradient read
 * from a worker's shared-memory segment needs no model-sized copy on the shard.
 */
export interface Gradient {
  /** Elements [from, to) of slice `i`'s gradient, at most GRADIENT_PIECE of them; valid until the next call. */
  piece(i: number, from: number, to: number): Float32Array;
}

/** Updates go through the slices this many elements at a time. */
export const GRADIENT_PIECE = 1 << 20;

/** A gradient held whole, one array per slice. */
export function wholeGradient(arrays: readonly Float32Array[]): Gradient {
  return { piece: (i, from, to) => arrays[i].subarray(from, to) };
}

/** The [from, to) ranges of GRADIENT_PIECE values that a slice of `length` values goes in. */
export function* pieces(length: number): Generator<[number, number]> {
  for (let from = 0; from < length; from += GRADIENT_PIECE)
    yield [from, Math.min(length, from + GRADIENT_PIECE)];
}

/** A sync step being gathered: the running sum of its gradients and who contributed. */
interface StepAccumulator {
  readonly stepSize: number;
  /** The epoch of the step's first push picks the learning rate for the whole step. */
  readonly epoch: number;
  readonly sums: Float32Array[];
  count: number;
  /** The batches gathered so far: a checkpoint leaves them out, since their sum is not kept. */
  readonly keys: number[];
}

/** Everything a checkpoint keeps of a trial's state on a shard. */
export interface TrialCheckpoint {
  trial: string;
  config: OptimizerConfig;
  mode: ConsistencyMode;
  version: number;
  batchesApplied: number;
  applySeconds: number;
  /** Keys (see batchKey) of the batches folded into the parameters. */
  applied: number[];
  /** ssp:N's N (0: no bound); absent in checkpoints written before ssp. */
  maxStaleness?: number;
  slices: ReadonlyArray<
    SliceRange & { values: Float32Array; state: Float32Array[]; movingAverage?: number }
  >;
}

/**
 * A trial's state lent to a checkpoint for as long as `write` runs: its arrays do not change
 * meanwhile (the trial's updates wait), so each trial's part is consistent without a copy.
 */
export interface CheckpointSection {
  lend<T>(write: (c: TrialCheckpoint) => Promise<T>): Promise<T>;
}

/**
 * One trial's state on one shard. Gradients reach `push` already validated (finite, one buffer
 * per slice, slice-aligned); everything `push` refuses, it refuses before changing anything.
 */
export class TrialShard implements CheckpointSection {
  readonly slices: readonly TrialSlice[];
  /**
   * Held to read the arrays (a checkpoint, a pull, an epoch-end snapshot) and to update them:
   * an update goes in pieces with the event loop free between them, so every reader takes it.
   */
  readonly access = new ReadWriteLock();
  /** Number of optimizer updates applied; Adam's step count is version + 1. */
  version = 0;
  /** Distinct (epoch, batch) gradients folded into the parameters. */
  batchesApplied = 0;
  /** Time spent in the optimizer, for the benchmark's breakdown of where a step's time goes. */
  applySeconds = 0;
  /** ssp:N: a push computed from values more than N versions old is refused; 0: no bound. */
  maxStaleness = 0;
  /** The versions each worker's latest accepted pushes made (async mode), newest last. */
  private readonly ownVersions = new Map<string, number[]>();
  readonly refused = new Map<RefusalReason, number>();
  private readonly optimizer: Optimizer;
  private schedule: LrSchedule;
  private readonly accepted = new Set<number>();
  private readonly pending = new Map<number, StepAccumulator>();

  constructor(
    readonly trial: string,
    public config: OptimizerConfig,
    readonly mode: ConsistencyMode,
    slices: ReadonlyArray<
      SliceRange & { values: Float32Array; state?: Float32Array[]; movingAverage?: number }
    >,
  ) {
    validateOptimizerConfig(config);
    this.optimizer = optimizerFor(config.kind);
    this.schedule = parseLrDecay(config.lr_decay, config.lr);
    this.slices = slices.map((s) => ({
      name: s.name,
      start: s.start,
      length: s.length,
      values: s.values,
      state: s.state ?? createOptimizerState(this.optimizer, s.length),
      ...(s.movingAverage ? { movingAverage: s.movingAverage } : {}),
    }));
    for (const s of this.slices) {
      if (s.state.length !== this.optimizer.stateSize || s.state.some((a) => a.length !== s.length))
        throw new RangeError(`trial ${trial}: ${s.name} has optimizer state of the wrong shape`);
    }
  }

  /**
   * Lends the trial's state (the live arrays, not copies) to a checkpoint for as long as `write`
   * runs; updates wait meanwhile. Batches of an incomplete sync step are left out of `applied`
   * (their partial sum is not saved), so after a restore they count as never received and the
   * coordinator runs them again.
   */
  lend<T>(write: (c: TrialCheckpoint) => Promise<T>): Promise<T> {
    return this.access.read(() =>
      write({
        trial: this.trial,
        config: this.config,
        mode: this.mode,
        version: this.version,
        batchesApplied: this.batchesApplied,
        applySeconds: this.applySeconds,
        applied: this.appliedKeys(),
        maxStaleness: this.maxStaleness,
        slices: this.slices,
      }),
    );
  }

  static restore(c: TrialCheckpoint): TrialShard {
    const shard = new TrialShard(c.trial, c.config, c.mode, c.slices);
    shard.version = c.version;
    shard.batchesApplied = c.batchesApplied;
    shard.applySeconds = c.applySeconds;
    shard.maxStaleness = c.maxStaleness ?? 0;
    for (const key of c.applied) shard.accepted.add(key);
    return shard;
  }

  /** Keys of the batches folded into the parameters (those of a gathering sync step excluded). */
  appliedKeys(): number[] {
    const gathering = new Set<number>();
    for (const acc of this.pending.values()) for (const key of acc.keys) gathering.add(key);
    return [...this.accepted].filter((key) => !gathering.has(key));
  }

  /**
   * Keys of every batch this shard holds: applied, or gathered into a sync step still waiting for
   * its other batches (applied once they arrive, so not to be run again).
   */
  heldKeys(): number[] {
    return [...this.accepted];
  }

  /** Panda mode: a new base learning rate; the trial's decay schedule applies to it from now on. */
  setLearningRate(lr: number): void {
    this.config = validateOptimizerConfig({ ...this.config, lr });
    this.schedule = parseLrDecay(this.config.lr_decay, this.config.lr);
  }

  get elements(): number {
    return sliceElements(this.slices);
  }

  isDuplicate(epoch: number, batch: number): boolean {
    return this.accepted.has(batchKey(epoch, batch));
  }

  countRefusal(reason: RefusalReason): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  /** Applies (async) or gathers (sync) one batch's gradient; `grads` aligns with `slices`. */
  push(meta: PushMeta, grads: readonly Float32Array[] | Gradient): PushOutcome {
    return drain(this.pushInPieces(meta, grads));
  }

  /**
   * `push`, pausing (a yield) after every piece of GRADIENT_PIECE values, so a caller holding the
   * trial's write lock can let the event loop run between pieces of a model-sized update. Until
   * it returns, the trial's version and applied batches are as before the push.
   */
  *pushInPieces(
    meta: PushMeta,
    grads: readonly Float32Array[] | Gradient,
  ): Generator<void, PushOutcome> {
    const gradient = 'piece' in grads ? grads : wholeGradient(grads);
    if (this.isDuplicate(meta.epoch, meta.batch)) {
      this.countRefusal('duplicate');
      return { accepted: false, duplicate: true, version: this.version };
    }
    // After the duplicate check: a restored shard's lost batches, re-run from old values, are
    // duplicates on the shards that kept them, and must be answered as such to let it catch up.
    const behind = this.stalenessOf(meta);
    if (this.maxStaleness > 0 && behind > this.maxStaleness)
      throw new FailedPreconditionError(
        `push of trial ${this.trial} (epoch ${meta.epoch}, batch ${meta.batch}) was computed from ` +
          `version ${meta.version}, ${behind} updates of other workers behind this shard's ` +
          `${this.version}; ssp:${this.maxStaleness} refuses more than ${this.maxStaleness}`,
      );
    if (this.mode === 'async') {
      yield* this.update(gradient, meta.epoch);
      this.batchesApplied += 1;
      this.noteOwn(meta.worker);
    } else {
      yield* this.gather(meta, gradient);
    }
    this.accepted.add(batchKey(meta.epoch, meta.batch));
    return { accepted: true, duplicate: false, version: this.version, staleness: behind };
  }

  /**
   * The updates a push's values missed, less the pusher's own: as in SSP (Ho et al. 2013), the
   * bound is on other workers' updates, a worker's reads being meant to include its own. A
   * worker under --overlap computes each batch before its previous push is answered, so its
   * values miss that one update of its own, by its choice; it is not counted against N.
   */
  private stalenessOf(meta: PushMeta): number {
    const from = meta.version ?? this.version;
    const own = meta.worker
      ? (this.ownVersions.get(meta.worker) ?? []).filter((v) => v > from).length
      : 0;
    return this.version - from - own;
  }

  private noteOwn(worker: string | undefined): void {
    if (!worker || this.maxStaleness === 0) return;
    const versions = this.ownVersions.get(worker) ?? [];
    versions.push(this.version);
    if (versions.length > OWN_VERSIONS_KEPT) versions.shift();
    this.ownVersions.set(worker, versions);
  }

  private *gather(meta: PushMeta, grad: Gradient): Generator<void> {
    const acc = this.accumulatorFor(meta);
    for (const [i, sum] of acc.sums.entries()) {
      for (const [from, to] of pieces(sum.length)) {
        const g = grad.piece(i, from, to);
        for (let k = from; k < to; k++) sum[k] += g[k - from];
        yield;
      }
    }
    acc.count += 1;
    acc.keys.push(batchKey(meta.epoch, meta.batch));
    yield* this.applyCompleteSteps();
  }

  /** Checks the step before anything changes, then finds or opens its accumulator. */
  private accumulatorFor({ epoch, step, step_size }: PushMeta): StepAccumulator {
    if (!Number.isSafeInteger(step_size) || step_size < 1) {
      throw new RefusedInputError(
        'bad_header',
        `sync push for trial ${this.trial} has step_size ${step_size}; it must be >= 1`,
      );
    }
    if (isStepApplied(step, this.version)) {
      throw new FailedPreconditionError(
        `trial ${this.trial}: step ${step} is already applied (shard version ${this.version})`,
      );
    }
    const existing = this.pending.get(step);
    if (existing && existing.stepSize !== step_size) {
      throw new RefusedInputError(
        'bad_header',
        `trial ${this.trial} step ${step}: step_size ${step_size} differs from the step's ${existing.stepSize}`,
      );
    }
    if (existing) return existing;
    const fresh: StepAccumulator = {
      stepSize: step_size,
      epoch,
      sums: this.slices.map((s) => new Float32Array(s.length)),
      count: 0,
      keys: [],
    };
    this.pending.set(step, fresh);
    return fresh;
  }

  /** Steps apply strictly in order (see core/sync-barrier): a complete step t+1 waits for step t. */
  private *applyCompleteSteps(): Generator<void> {
    for (;;) {
      const acc = this.pending.get(this.version);
      if (!acc || acc.count < acc.stepSize) return;
      this.pending.delete(this.version);
      for (const sum of acc.sums) {
        for (const [from, to] of pieces(sum.length)) {
          for (let k = from; k < to; k++) sum[k] /= acc.stepSize;
          yield;
        }
      }
      yield* this.update(wholeGradient(acc.sums), acc.epoch);
      this.batchesApplied += acc.stepSize;
    }
  }

  private *update(grad: Gradient, epoch: number): Generator<void> {
    const ctx = { lr: this.schedule(epoch), step: this.version + 1 };
    // The optimizers work element by element, so going piece by piece changes no result.
    for (const [i, s] of this.slices.entries()) {
      for (const [from, to] of pieces(s.length)) {
        const started = performance.now();
        if (s.movingAverage !== undefined)
          movingAverage(s.values.subarray(from, to), grad.piece(i, from, to), s.movingAverage);
        else
          this.optimizer.apply(
            s.values.subarray(from, to),
            grad.piece(i, from, to),
            s.state.map((st) => st.subarray(from, to)),
            ctx,
            this.config,
          );
        this.applySeconds += (performance.now() - started) / 1000;
        yield;
      }
    }
    this.version += 1;
  }
}

/** value = m·value + (1-m)·statistic: tfjs's BatchNormalization update of its moving averages. */
function movingAverage(values: Float32Array, statistic: Float32Array, m: number): void {
  for (let k = 0; k < values.length; k++) values[k] = m * values[k] + (1 - m) * statistic[k];
}
