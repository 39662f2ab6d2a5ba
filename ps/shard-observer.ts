/**
 * What a shard reports as it happens, for its metrics: the few numbers that are not kept in its
 * state (per-push latency, bytes). Every method is cheap and must not throw.
 */
export interface ShardObserver {
  /** Optimizer seconds spent by one push that changed the parameters. */
  applied(trial: string, seconds: number): void;
  /** Gradient bytes received in a push chunk. */
  bytesIn(bytes: number): void;
  /** Parameter bytes sent in a pull chunk. */
  bytesOut(bytes: number): void;
  /** An applied push's staleness: the trial's versions between the values it used and it. */
  staleness(trial: string, versions: number): void;
}

/** One trial's state on a shard, as the shard's metrics read it at scrape time. */
export interface ShardTrialSnapshot {
  trial: string;
  version: number;
  batchesApplied: number;
  elements: number;
  applySeconds: number;
  refused: Record<string, number>;
}

/** The shard's state that its metrics read at scrape time (see ParameterServerShard.metricsSnapshot). */
export interface ShardSnapshot {
  shard: string;
  trials: ShardTrialSnapshot[];
  /** Pushes naming a trial the shard does not hold. */
  unknownTrialPushes: number;
  /** Absent without checkpointing. */
  checkpoint?: { seq: number; failures: number; lastSeconds: number };
}
