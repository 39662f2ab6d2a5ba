import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { fillCounter, fillGauge, oncePerTurn } from '../core/metric-fill';
import type { ShardObserver, ShardSnapshot } from './shard-observer';

/** Optimizer time per push: microseconds for a small MLP slice up to a second for a large one. */
const APPLY_BUCKETS = [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1];

/**
 * A shard's metrics. Counts and sizes are read from `snapshot()` at scrape time; the apply
 * latency histogram and the byte counters are fed by the returned observer, which the shard
 * calls on its hot path (a few additions, no allocation). Labels: shard id, trial id, reason.
 */
export function registerShardMetrics(
  registry: Registry,
  shard: string,
  snapshot: () => ShardSnapshot,
): ShardObserver {
  const read = oncePerTurn(snapshot);
  const perTrial = (pick: (t: ShardSnapshot['trials'][number]) => number) =>
    read().trials.map((t) => ({ labels: { shard, trial: t.trial }, value: pick(t) }));
  new Counter({
    name: 'caviar_ps_pushes_applied_total',
    help: 'Distinct mini-batch gradients folded into the trial parameters held here',
    labelNames: ['shard', 'trial'],
    registers: [registry],
    collect() {
      fillCounter(
        this,
        perTrial((t) => t.batchesApplied),
      );
    },
  });
  new Counter({
    name: 'caviar_ps_pushes_refused_total',
    help: 'Pushes refused, by reason (duplicate, stale, fenced, non_finite, bad_shape, ...)',
    labelNames: ['shard', 'trial', 'reason'],
    registers: [registry],
    collect() {
      const snap = read();
      const rows = snap.trials.flatMap((t) =>
        Object.entries(t.refused).map(([reason, value]) => ({
          labels: { shard, trial: t.trial, reason },
          value,
        })),
      );
      // A push naming an unknown trial has no trial to charge: it is counted shard-wide.
      rows.push({
        labels: { shard, trial: '', reason: 'unknown_trial' },
        value: snap.unknownTrialPushes,
      });
      fillCounter(this, rows);
    },
  });
  new Gauge({
    name: 'caviar_ps_parameters',
    help: 'Parameter elements held here (float32 each)',
    labelNames: ['shard', 'trial'],
    registers: [registry],
    collect() {
      fillGauge(
        this,
        perTrial((t) => t.elements),
      );
    },
  });
  new Gauge({
    name: 'caviar_ps_trial_version',
    help: 'Optimizer updates applied to the trial parameters held here',
    labelNames: ['shard', 'trial'],
    registers: [registry],
    collect() {
      fillGauge(
        this,
        perTrial((t) => t.version),
      );
    },
  });
  new Gauge({
    name: 'caviar_ps_trials',
    help: 'Trials with parameters held here',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      fillGauge(this, [{ labels: { shard }, value: read().trials.length }]);
    },
  });
  registerCheckpointMetrics(registry, shard, read);
  return registerShardObserver(registry, shard);
}

function registerCheckpointMetrics(
  registry: Registry,
  shard: string,
  read: () => ShardSnapshot,
): void {
  new Gauge({
    name: 'caviar_ps_checkpoint_duration_seconds',
    help: 'Seconds the most recent checkpoint took to write',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      const c = read().checkpoint;
      fillGauge(this, c ? [{ labels: { shard }, value: c.lastSeconds }] : []);
    },
  });
  new Gauge({
    name: 'caviar_ps_checkpoint_sequence',
    help: 'Sequence number of the newest checkpoint written (0: none yet)',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      const c = read().checkpoint;
      fillGauge(this, c ? [{ labels: { shard }, value: c.seq }] : []);
    },
  });
  new Counter({
    name: 'caviar_ps_checkpoint_failures_total',
    help: 'Checkpoint writes that failed (a full disk, say)',
    labelNames: ['shard'],
    registers: [registry],
    collect() {
      const c = read().checkpoint;
      fillCounter(this, c ? [{ labels: { shard }, value: c.failures }] : []);
    },
  });
}

/** Versions behind: 0 in sync, about workers - 1 in async, up to N in ssp:N. */
const STALENESS_BUCKETS = [0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64];

function registerShardObserver(registry: Registry, shard: string): ShardObserver {
  const apply = new Histogram({
    name: 'caviar_ps_apply_seconds',
    help: 'Optimizer time of one push that changed the parameters',
    labelNames: ['shard', 'trial'],
    buckets: APPLY_BUCKETS,
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'caviar_ps_bytes_total',
    help: 'Tensor payload bytes: gradients received (in) and parameters sent (out)',
    labelNames: ['shard', 'direction'],
    registers: [registry],
  });
  const staleness = new Histogram({
    name: 'caviar_ps_push_staleness',
    help: 'Versions of the trial applied between the values a push was computed from and the push (ssp:N refuses more than N)',
    labelNames: ['shard', 'trial'],
    buckets: STALENESS_BUCKETS,
    registers: [registry],
  });
  const bytesIn = bytes.labels({ shard, direction: 'in' });
  const bytesOut = bytes.labels({ shard, direction: 'out' });
  // Both series exist from the start, so rate() has a zero to start from.
  bytesIn.inc(0);
  bytesOut.inc(0);
  return {
    applied: (trial, seconds) => apply.observe({ shard, trial }, seconds),
    bytesIn: (n) => bytesIn.inc(n),
    bytesOut: (n) => bytesOut.inc(n),
    staleness: (trial, versions) => staleness.observe({ shard, trial }, Math.max(0, versions)),
  };
}
