import { snapshotsKept } from './trial-footprint';
import { pieces, type TrialShard } from './trial-shard';

/** A trial's values as they were at an epoch's end, for that epoch's evaluation. */
export interface Snapshot {
  version: number;
  values: readonly Float32Array[];
  /** Chunk streams reading it now: its arrays are not lent to a newer snapshot meanwhile. */
  streaming: number;
}

/**
 * Per trial (dropped with it): its values at the ends of its newest epochs, by epoch. They stay
 * after a pull reads them, so that an evaluation run again (its worker died after the pull)
 * still sees its epoch's values.
 */
export class EpochSnapshots {
  private readonly byTrial = new WeakMap<TrialShard, Map<number, Snapshot>>();

  get(trial: TrialShard, epoch: number): Snapshot | undefined {
    return this.byTrial.get(trial)?.get(epoch);
  }

  /**
   * Keeps a copy of the trial's values as the end of `epoch`, dropping older ones past a few;
   * pauses (a yield) after every piece copied, and the snapshot is found only once complete.
   * The caller holds the trial's read lock throughout.
   */
  *take(trial: TrialShard, epoch: number): Generator<void> {
    const kept = this.byTrial.get(trial) ?? new Map<number, Snapshot>();
    this.byTrial.set(trial, kept);
    // The oldest dropped lends its arrays to the new one: a large trial never holds two at once,
    // not even as garbage the collector has yet to free.
    const older = [...kept.keys()].sort((a, b) => a - b);
    const keepOlder = snapshotsKept(trial.elements) - 1;
    let spare: readonly Float32Array[] | undefined;
    for (const old of older.slice(0, Math.max(0, older.length - keepOlder))) {
      const dropped = kept.get(old);
      if (dropped?.streaming === 0) spare = dropped.values;
      kept.delete(old);
    }
    const values: Float32Array[] = [];
    for (const [i, s] of trial.slices.entries()) {
      const into = spare?.[i] ?? new Float32Array(s.length);
      for (const [from, to] of pieces(s.length)) {
        into.set(s.values.subarray(from, to), from);
        yield;
      }
      values.push(into);
    }
    kept.set(epoch, { version: trial.version, values, streaming: 0 });
  }

  /** Marks `snapshot` as read by a stream until the returned function is called (once or more). */
  static reading(snapshot: Snapshot): () => void {
    snapshot.streaming += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      snapshot.streaming -= 1;
    };
  }
}
