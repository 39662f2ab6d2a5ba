import type { ReadyLine } from '../core/role-process';

/** One group of Prometheus file_sd_configs: targets and the labels Prometheus attaches. */
export interface FileSdGroup {
  targets: string[];
  labels: Record<string, string>;
}

/**
 * A local cluster's processes as a Prometheus file_sd target list: one group per process, so
 * each series carries its role and id (`caviar_role`, `caviar_id`). Processes without a metrics
 * URL are left out; every endpoint serves the default /metrics path.
 */
export function fileSdTargets(processes: readonly ReadyLine[]): FileSdGroup[] {
  return processes
    .filter((p) => p.metrics)
    .map((p) => ({
      targets: [new URL(p.metrics!).host],
      labels: { caviar_role: p.role, caviar_id: p.id },
    }));
}
