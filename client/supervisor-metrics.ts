import { Counter, type Registry } from 'prom-client';

/** What `caviar up` exports of its supervision: one series per process it restarted. */
export interface SupervisorMetrics {
  restarted(role: string, id: string): void;
}

export function registerSupervisorMetrics(registry: Registry): SupervisorMetrics {
  const restarts = new Counter({
    name: 'caviar_role_restarts_total',
    help: 'Role processes (and etcd) of a local cluster started again after they died',
    // The id under the label the other families use for it: bounded sets, no free-form ids.
    labelNames: ['role', 'shard', 'worker'] as const,
    registers: [registry],
  });
  return {
    restarted: (role, id) =>
      restarts.inc(
        role === 'ps' ? { role, shard: id } : role === 'worker' ? { role, worker: id } : { role },
      ),
  };
}
