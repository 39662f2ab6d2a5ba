import { errorMessage } from '../core/errors';
import type { Logger } from '../core/log';
import { batchKey, batchOfKey } from '../core/batches';
import { batchesToRerun } from '../core/sync-barrier';
import type { TrialRecord } from './trial-record';
import type { TrialShards } from './trial-shards';
import type { TrialTable } from './trial-table';

export interface ShardReconcilerOptions {
  /** The configured shard addresses: a member joining at another address is no shard of ours. */
  addresses: readonly string[];
  shards: TrialShards;
  trials: TrialTable;
  log: Logger;
  /** Ends a trial's use of the shards (a shard lost it). */
  release(record: TrialRecord): Promise<void>;
  changed(trial: string): void;
}

/** A stalled sync step asks the shards again at most this often per trial. */
const STALL_CHECK_INTERVAL_MS = 1_000;

/**
 * Keeps the shards holding every batch the coordinator counts as completed. A shard restored from
 * a checkpoint older than its crash lacks the batches since: they run again.
 */
export class ShardReconciler {
  private readonly stallCheckedAt = new WeakMap<TrialRecord, number>();

  constructor(private readonly options: ShardReconcilerOptions) {}

  /**
   * A sync batch came back unrun, transiently: its pull may have waited for a step that a shard
   * cannot apply because it lacks a batch the coordinator counts as completed (a shard that died
   * after acknowledging a push, and answered the check made when it joined again before that
   * push's batch was reported). Only a check repairs that: the epoch's end, the other check, waits
   * for the very step. Asking again after such failures bounds the stall to one pull's wait.
   */
  syncStepStalled(record: TrialRecord): void {
    const now = Date.now();
    if (now - (this.stallCheckedAt.get(record) ?? 0) < STALL_CHECK_INTERVAL_MS) return;
    this.stallCheckedAt.set(record, now);
    void this.reconcile(record, 'a sync batch came back unrun');
  }

  /**
   * Asks every shard holding the trial which batches it has applied, and runs again the completed
   * ones it lacks. At an epoch's end this is what lets the evaluation go out; after a shard
   * restart it repairs at once.
   */
  async reconcile(record: TrialRecord, why: string): Promise<void> {
    if (record.reconciling) return record.reconciling;
    const once = this.reconcileOnce(record, why);
    record.reconciling = once
      .then(() => undefined)
      .finally(() => {
        record.reconciling = undefined;
      });
    const checkedEpochEnd = await once;
    // An epoch that ended while this check (begun for another reason) was out needs its own:
    // the one with the snapshot.
    if (!checkedEpochEnd && record.run.evalState === 'verify' && record.run.state === 'running')
      await this.reconcile(record, 'epoch end');
  }

  /** One check; whether it was the check of an epoch's end (with its snapshot). */
  private async reconcileOnce(record: TrialRecord, why: string): Promise<boolean> {
    const { log } = this.options;
    const completed = new Set(record.run.completedKeys());
    // At an epoch's end, no batch of the next is out yet: the shards' values are the epoch's
    // result, kept for its evaluation while the next epoch trains.
    const epochEnd = record.run.evalState === 'verify' ? record.run.epoch : undefined;
    let answers;
    try {
      answers = await this.options.shards.applied(record, epochEnd);
    } catch (err) {
      // A shard that is down cannot answer; the next epoch end or its restart asks again.
      log.warn({ trial: record.id, why, err: errorMessage(err) }, 'cannot reconcile yet');
      setTimeout(() => void this.reconcile(record, why), 500).unref();
      return true;
    }
    if (answers.some((a) => !a.held)) {
      record.error =
        'a parameter-server shard lost the trial (restarted without a checkpoint holding it)';
      record.run.fail();
      await this.options.release(record);
      this.options.changed(record.id);
      return true;
    }
    const held = answers.map(
      (answer) => new Set(answer.epochs.map((e, i) => batchKey(e, answer.batches[i]))),
    );
    const repaired = record.run.repair(batchesToRerun(completed, held, batchOfKey));
    if (repaired > 0) log.warn({ trial: record.id, why, repaired }, 'running lost batches again');
    else if (epochEnd !== undefined) record.run.verified(epochEnd);
    this.options.changed(record.id);
    return epochEnd !== undefined;
  }

  /** A shard (re)joined: one that restarted from a checkpoint may lack recent batches of every trial. */
  shardJoined(address: string | undefined): void {
    if (!address || !this.options.addresses.includes(address)) return;
    for (const record of this.options.trials.values()) {
      if (record.run.state === 'running') void this.reconcile(record, `shard ${address} joined`);
    }
  }
}
