import { errorMessage } from '../core/errors';
import type { Logger } from '../core/log';
import { readCheckpoint, writeCheckpoint } from './checkpoint-codec';
import type { CheckpointStore } from './checkpoint-store';
import type { CheckpointSection, TrialCheckpoint } from './trial-shard';

/**
 * Periodic saves leave at least this many times the last save's duration between them, so that
 * a shard whose slices take seconds to write spends at most a tenth of its time holding its
 * trials' updates back for checkpoints.
 */
const GAP_PER_SAVE_SECOND = 9;

export interface CheckpointPolicy {
  store: CheckpointStore;
  /** Save after this many optimizer updates (over all trials). Defaults to 50. */
  everyUpdates?: number;
  /** Save at least this often while anything changed, in ms. Defaults to 2 s. */
  everyMs?: number;
}

/**
 * Saves a shard's state every N updates or T ms (spaced out for large shards, see
 * GAP_PER_SAVE_SECOND), one save at a time: a save requested while
 * one runs is folded into a single follow-up. A failed save (disk full) is logged and counted;
 * the shard keeps serving and the previous checkpoint stays the one a restart restores.
 */
export class Checkpointer {
  private updates = 0;
  private dirty = false;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly everyUpdates: number;
  failures = 0;
  lastSeq = 0;
  seconds = 0;
  /** When the last save ended (performance.now()), for the spacing of periodic saves. */
  private lastEnded = 0;

  constructor(
    private readonly shard: string,
    private readonly policy: CheckpointPolicy,
    private readonly collect: () => CheckpointSection[],
    private readonly log?: Logger,
  ) {
    this.everyUpdates = policy.everyUpdates ?? 50;
    this.timer = setInterval(() => {
      if (this.dirty) this.saveSoon();
    }, policy.everyMs ?? 2_000);
    this.timer.unref();
  }

  /** The trials of the newest valid checkpoint (none if there is none). */
  async restore(): Promise<TrialCheckpoint[]> {
    const newest = await this.policy.store.loadNewest(
      async (source) => (await readCheckpoint(source)).trials,
    );
    if (!newest) return [];
    this.lastSeq = newest.seq;
    return newest.value;
  }

  /** Something changed; `updates` optimizer steps were applied. */
  noteChange(updates = 0): void {
    this.dirty = true;
    this.updates += updates;
    if (this.updates >= this.everyUpdates) this.saveSoon();
  }

  /** A periodic save: none while one runs or while the gap after the last one lasts. */
  private saveSoon(): void {
    if (this.running) return;
    if (performance.now() - this.lastEnded < GAP_PER_SAVE_SECOND * this.seconds * 1000) return;
    void this.saveNow().catch(() => undefined);
  }

  /** Saves the current state; resolves once a save that started after this call has finished. */
  saveNow(): Promise<void> {
    if (!this.running) {
      this.running = this.save().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.saveNow();
      });
    return this.queued;
  }

  private async save(): Promise<void> {
    this.dirty = false;
    this.updates = 0;
    const started = performance.now();
    try {
      this.lastSeq = await this.policy.store.save((sink) =>
        writeCheckpoint(sink, this.shard, this.collect()),
      );
      this.lastEnded = performance.now();
      this.seconds = (this.lastEnded - started) / 1000;
      this.log?.debug({ seq: this.lastSeq, seconds: this.seconds }, 'checkpoint saved');
    } catch (err) {
      this.failures += 1;
      this.dirty = true;
      this.log?.error({ err: errorMessage(err) }, 'checkpoint failed');
      throw err;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }
}
