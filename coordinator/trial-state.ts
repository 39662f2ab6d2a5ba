import type { TrialSpec } from '../proto/gen/caviar/v1/TrialSpec';
import { trialSpecMessage } from '../core/trial-spec';
import type { SavedRun } from './trial-run';
import type { TrialRecord } from './trial-record';

/** A trial as the coordinator keeps it in etcd: enough for another coordinator to take it over. */
export interface PersistedTrial {
  id: string;
  spec: TrialSpec;
  sweep: string;
  round: number;
  hyperJson: string;
  objectiveMetric: string;
  humanError: number | null;
  run: SavedRun;
  startedAt: number;
  finishedAt?: number;
  error: string;
  stopReason: string;
  batchesApplied: number;
  batchesAppliedPerShard: number[];
  pushesRefused: Record<string, number>;
  timing: TrialRecord['timing'];
  backends: string[];
  workers: string[];
  predictMsP95?: number;
}

export function persistedTrial(record: TrialRecord): PersistedTrial {
  return {
    id: record.id,
    spec: trialSpecMessage(record.spec),
    sweep: record.sweep,
    round: record.round,
    hyperJson: record.hyperJson,
    objectiveMetric: record.objectiveMetric,
    humanError: record.humanError,
    run: record.run.saved(),
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    error: record.error,
    stopReason: record.stopReason,
    batchesApplied: record.batchesApplied,
    batchesAppliedPerShard: record.batchesAppliedPerShard,
    pushesRefused: record.pushesRefused,
    timing: record.timing,
    backends: [...record.backends],
    workers: [...record.workers],
    predictMsP95: record.predictMsP95,
  };
}
