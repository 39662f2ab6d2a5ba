import { errorMessage } from '../core/errors';
import type { Logger } from '../core/log';
import { resolveTrialSpec, type ResolvedTrialSpec } from '../core/trial-spec';
import { TrialRun } from './trial-run';
import { TERMINAL_STATES, type TrialRecord } from './trial-record';
import type { PersistedTrial } from './trial-state';
import type { RecordStore } from './record-store';
import type { TrialBasis } from './trial-basis';
import type { TrialShards } from './trial-shards';
import type { TrialTable } from './trial-table';
import type { TrialStart } from './trial-start';

export interface TrialTakeoverOptions {
  /** Shard addresses, in the order the placement's shard numbers refer to. */
  addresses: string[];
  shards: TrialShards;
  trials: TrialTable;
  log: Logger;
  basis(spec: ResolvedTrialSpec): Promise<TrialBasis>;
  start(spec: ResolvedTrialSpec, basis: TrialBasis): Promise<TrialStart>;
  finish(record: TrialRecord): Promise<void>;
  reconcile(record: TrialRecord, why: string): Promise<void>;
}

/**
 * Takes over the trials a previous coordinator saved: finished ones as they were (never run
 * again), running ones from where the shards are: the batches every shard holds count as done.
 */
export async function takeOverTrials(
  store: RecordStore<PersistedTrial>,
  options: TrialTakeoverOptions,
): Promise<void> {
  const saved = (await store.loadAll()).sort((a, b) => a.startedAt - b.startedAt);
  for (const p of saved) {
    try {
      options.trials.add(await restoredTrial(p, options));
    } catch (err) {
      options.log.error({ trial: p.id, err: errorMessage(err) }, 'cannot restore a saved trial');
    }
  }
  if (saved.length > 0)
    options.log.info(
      { trials: saved.map((p) => `${p.id}:${p.run.state}`) },
      'took over saved trials',
    );
}

async function restoredTrial(
  p: PersistedTrial,
  options: TrialTakeoverOptions,
): Promise<TrialRecord> {
  const spec = resolveTrialSpec(p.spec);
  const basis = await options.basis(spec);
  const ongoing = !TERMINAL_STATES.has(p.run.state);
  const applied = ongoing
    ? await options.shards.appliedEverywhere(p.id, basis.slices)
    : new Set<number>();
  // Frozen layers live only here: a running trial needs them again, from where it started.
  let frozenValues: ReadonlyMap<string, Float32Array> = new Map();
  let lostFrozen = '';
  if (ongoing && basis.frozen.size > 0) {
    frozenValues = await options
      .start(spec, basis)
      .then((start) => start.frozen)
      .catch((err: unknown) => {
        lostFrozen = `its frozen layers cannot be read again: ${errorMessage(err)}`;
        return new Map();
      });
  }
  const record: TrialRecord = {
    ...basis,
    frozenValues,
    id: p.id,
    spec,
    run: TrialRun.resume(basis.runOptions, p.run, applied ?? new Set()),
    shards: options.addresses,
    startedAt: p.startedAt,
    finishedAt: p.finishedAt,
    error: p.error,
    batchesApplied: p.batchesApplied,
    batchesAppliedPerShard: p.batchesAppliedPerShard,
    pushesRefused: p.pushesRefused,
    backends: new Set(p.backends),
    workers: new Set(p.workers),
    timing: p.timing,
    failuresInARow: 0,
    sweep: p.sweep,
    round: p.round,
    hyperJson: p.hyperJson,
    stopReason: p.stopReason,
    objectiveMetric: p.objectiveMetric,
    humanError: p.humanError,
    predictMsP95: p.predictMsP95 ?? 0,
  };
  // A coordinator may die after storing a trial's end and before the shards dropped it.
  if (!ongoing) void options.shards.drop(p.id).catch(() => undefined);
  if (ongoing && !applied) {
    record.error = 'its parameters are gone from the shards (they restarted without it)';
    record.run.fail();
  } else if (lostFrozen) {
    record.error = lostFrozen;
    record.run.fail();
  } else if (record.run.state === 'finishing') {
    void options.finish(record);
  } else if (ongoing && record.run.evalState === 'verify') {
    void options.reconcile(record, 'taken over');
  }
  return record;
}
