import { Counter, Gauge, type Registry } from 'prom-client';
import type { Member } from '../proto/gen/caviar/v1/Member';
import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import type { Role } from '../core/membership';
import { fillCounter, fillGauge } from '../core/metric-fill';
import { TRIAL_STATES } from './trial-metrics';

const ROLES: readonly Role[] = ['coordinator', 'ps', 'worker'];

/** What the cluster-wide families read at scrape time. */
export interface ClusterMetricsSource {
  members(): Member[];
  trials(): TrialStatus[];
  /** Members whose membership lease ended, by role (empty without etcd). */
  departures(): ReadonlyMap<Role, number>;
}

/** Cluster-wide metrics of the coordinator: members by role, lease losses, re-queued batches. */
export function registerClusterMetrics(registry: Registry, source: ClusterMetricsSource): void {
  new Gauge({
    name: 'caviar_cluster_members',
    help: 'Live cluster members by role, as the coordinator sees them',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const members = source.members();
      fillGauge(
        this,
        ROLES.map((role) => ({
          labels: { role },
          value: members.filter((m) => m.role === role).length,
        })),
      );
    },
  });
  new Counter({
    name: 'caviar_cluster_lease_losses_total',
    help: 'Members whose membership lease ended (process died, paused or cut off), by role',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const departures = source.departures();
      fillCounter(
        this,
        ROLES.map((role) => ({ labels: { role }, value: departures.get(role) ?? 0 })),
      );
    },
  });
  new Counter({
    name: 'caviar_cluster_batches_requeued_total',
    help: 'Mini-batches of any trial handed out again after their lease was lost',
    registers: [registry],
    collect() {
      const total = source.trials().reduce((n, s) => n + Number(s.batches_requeued ?? 0), 0);
      fillCounter(this, [{ labels: {}, value: total }]);
    },
  });
  new Gauge({
    name: 'caviar_cluster_trials',
    help: 'Trials by state',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      const trials = source.trials();
      fillGauge(
        this,
        TRIAL_STATES.map((status) => ({
          labels: { status },
          value: trials.filter((t) => t.status === status).length,
        })),
      );
    },
  });
}
