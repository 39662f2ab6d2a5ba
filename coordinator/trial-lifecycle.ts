import type { TrialSpec } from '../proto/gen/caviar/v1/TrialSpec';
import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import { AlreadyExistsError, FailedPreconditionError, errorMessage } from '../core/errors';
import type { Logger } from '../core/log';
import {
  resolveTrialSpec,
  shardModeOf,
  trialSpecMessage,
  type ResolvedTrialSpec,
} from '../core/trial-spec';
import { parameterCount } from '../core/model-spec';
import { parseLrDecay } from '../core/lr-schedule';
import type { Hyper } from '../core/sweep';
import { resolveOptimizerConfig } from '../core/optimizer-config';
import { TrialRun } from './trial-run';
import { TERMINAL_STATES, trialStatus, type TrialRecord } from './trial-record';
import type { TrialBasis } from './trial-basis';
import type { TrialShards } from './trial-shards';
import type { TrialTable } from './trial-table';
import type { TrialStart } from './trial-start';

/** How long freeing a trial's shards waits for its end to be stored. */
const PERSIST_WAIT_MS = 3_000;

/** A trial started by a sweep: which, and how its best epoch and verdict are judged. */
export interface SweepTrialMeta {
  sweep: string;
  round: number;
  hyper: Hyper;
  objectiveMetric: string;
  humanError: number | null;
}

export interface TrialLifecycleOptions {
  /** Shard addresses, in the order the placement's shard numbers refer to. */
  addresses: string[];
  trials: TrialTable;
  shards: TrialShards;
  log: Logger;
  basis(spec: ResolvedTrialSpec): Promise<TrialBasis>;
  /** What the trial starts from: its seed, or another trial's or an export's parameters. */
  start(spec: ResolvedTrialSpec, basis: TrialBasis): Promise<TrialStart>;
  /** Takes back the trial's outstanding leases: their results no longer count. */
  revokeLeases(trial: string): void;
  /** The trial's sweep, if any, starts its next trial. */
  sweepTrialEnded(trial: string): void;
  /** Writes the trial's state to the store now; resolves once it is written. */
  persist(record: TrialRecord): Promise<void>;
  changed(trial: string): void;
}

/** A trial's life on the shards: created, tuned, paused, stopped or finished, then freed. */
export class TrialLifecycle {
  constructor(private readonly options: TrialLifecycleOptions) {}

  async submit(message: TrialSpec, sweep?: SweepTrialMeta): Promise<TrialStatus> {
    const { trials, shards } = this.options;
    const spec = resolveTrialSpec(message);
    const basis = await this.options.basis(spec);
    const id = spec.name || trials.newId();
    if (trials.has(id)) throw new AlreadyExistsError(`trial ${id} exists already`);
    const params = parameterCount(basis.params);
    await shards.admit(id, `${spec.modelText}: ${params} parameters`, basis.slices, {
      optimizer: spec.optimizer.kind,
      mode: shardModeOf(spec.mode),
    });
    const start = await this.options.start(spec, basis);
    await shards.init(id, basis.slices, start.header, start.initial);
    const record: TrialRecord = {
      ...basis,
      frozenValues: start.frozen,
      id,
      spec,
      run: new TrialRun(basis.runOptions),
      shards: this.options.addresses,
      startedAt: Date.now(),
      error: '',
      batchesApplied: 0,
      batchesAppliedPerShard: [],
      pushesRefused: {},
      backends: new Set(),
      workers: new Set(),
      timing: { compute: 0, pull: 0, push: 0, eval: 0, apply: 0 },
      failuresInARow: 0,
      sweep: sweep?.sweep ?? '',
      round: sweep?.round ?? 0,
      hyperJson: sweep ? JSON.stringify(sweep.hyper) : '',
      stopReason: '',
      objectiveMetric: sweep?.objectiveMetric ?? 'val_accuracy',
      humanError: sweep?.humanError ?? null,
      predictMsP95: 0,
    };
    trials.add(record);
    this.options.log.info({ trial: id, spec: trialSpecMessage(spec) }, 'trial submitted');
    this.options.changed(id);
    // Stored before the client hears it was accepted (workers start on it meanwhile): a
    // coordinator that dies within the store's coalescing delay must not lose the trial.
    await this.persistAwhile(record, 'cannot store the new trial yet');
    return trialStatus(record);
  }

  /**
   * Writes the trial's state now, waiting at most PERSIST_WAIT_MS: with etcd down the store keeps
   * retrying, and the caller goes on after logging `warning`.
   */
  private async persistAwhile(record: TrialRecord, warning: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.options
        .persist(record)
        .catch((err: unknown) =>
          this.options.log.warn({ trial: record.id, err: errorMessage(err) }, warning),
        ),
      new Promise((resolve) => (timer = setTimeout(resolve, PERSIST_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }

  /** The trial, which must not have ended: its shards no longer hold it. */
  private ongoing(id: string): TrialRecord {
    const record = this.options.trials.get(id);
    if (TERMINAL_STATES.has(record.run.state))
      throw new FailedPreconditionError(`trial ${id} has ended (${record.run.state})`);
    return record;
  }

  /** Panda mode: a new base learning rate for a running trial, on every shard holding it. */
  async tune(id: string, lr: number): Promise<TrialStatus> {
    const record = this.ongoing(id);
    const optimizer = resolveOptimizerConfig({ ...record.spec.optimizer, lr });
    await this.options.shards.setLearningRate(record, optimizer.lr);
    record.spec.optimizer = optimizer;
    record.run.lr = parseLrDecay(optimizer.lr_decay, optimizer.lr);
    this.options.log.info({ trial: id, lr }, 'learning rate tuned');
    this.options.changed(id);
    return trialStatus(record);
  }

  setPaused(id: string, paused: boolean): TrialStatus {
    const record = this.ongoing(id);
    record.run.paused = paused;
    this.options.log.info({ trial: id, paused }, paused ? 'trial paused' : 'trial resumed');
    this.options.changed(id);
    return trialStatus(record);
  }

  async stop(id: string, reason = 'stopped by the user'): Promise<TrialStatus> {
    const record = this.options.trials.get(id);
    if (!TERMINAL_STATES.has(record.run.state)) {
      record.stopReason = reason;
      record.finalParams = await this.options.shards.pullAll(record).catch(() => undefined);
      record.run.stop();
      await this.release(record);
      this.options.changed(id);
    }
    return trialStatus(record);
  }

  /** A trial's last epoch is evaluated: count what the shards applied, keep the parameters, free the shards. */
  async finish(record: TrialRecord): Promise<void> {
    try {
      await this.options.shards.collectResults(record);
      record.run.state = 'completed';
    } catch (err) {
      record.error = `finishing the trial failed: ${errorMessage(err)}`;
      record.run.state = 'failed';
    }
    record.finishedAt = Date.now();
    this.options.log.info(
      { trial: record.id, state: record.run.state, applied: record.batchesApplied },
      'trial ended',
    );
    await this.release(record);
    this.options.changed(record.id);
  }

  /** Frees the trial's shard memory and its outstanding leases; its sweep moves on. */
  async release(record: TrialRecord): Promise<void> {
    record.finishedAt ??= Date.now();
    this.options.revokeLeases(record.id);
    // The end is stored before the shards forget the trial: a coordinator that dies in between
    // leaves a successor that sees the trial ended, not one running without its parameters. With
    // etcd down, the store keeps retrying and the shards are freed after PERSIST_WAIT_MS anyway.
    await this.persistAwhile(record, 'cannot store the end of the trial yet');
    await this.options.shards.drop(record.id);
    this.options.sweepTrialEnded(record.id);
  }
}
