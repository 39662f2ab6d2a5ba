import * as fs from 'node:fs';
import * as path from 'node:path';
import { LocalCluster, localClusterOptions, type LocalClusterFlags } from './local-cluster';
import { fileSdTargets } from './prometheus-targets';
import { ClusterSupervisor } from './cluster-supervisor';
import { registerSupervisorMetrics } from './supervisor-metrics';
import { MetricsServer } from '../core/metrics-server';

export interface UpOptions extends LocalClusterFlags {
  json?: boolean;
  memberTtl?: number;
  /** commander's --no-restart: false turns the supervisor's restarts off. */
  restart?: boolean;
}

/** `caviar up`: a local cluster that stays up until SIGINT or SIGTERM. */
export async function upCommand(options: UpOptions): Promise<number> {
  const cluster = new LocalCluster(localClusterOptions(options));
  await cluster.start();
  // Its own endpoint, for the restarts it makes (the roles export the rest).
  const metrics = new MetricsServer();
  const supervision = registerSupervisorMetrics(metrics.registry);
  await metrics.start();
  process.stderr.write(cluster.membershipLine() + '\n');
  // For deploy/prometheus/prometheus.yml's file_sd_configs: copy or link it into its targets/.
  const targets = path.join(cluster.logDir, 'prometheus-targets.json');
  fs.writeFileSync(targets, JSON.stringify(fileSdTargets(cluster.processes), null, 2) + '\n');
  const ready = {
    coordinator: cluster.coordinator,
    dashboard: cluster.dashboard || null,
    metrics: [...cluster.metricsUrls(), metrics.metricsUrl],
    prometheus_targets: targets,
    etcd: cluster.etcdUrl ?? null,
    logs: cluster.logDir,
    processes: cluster.processes.map((p) => ({
      role: p.role,
      id: p.id,
      pid: p.pid,
      ...(p.address ? { address: p.address } : {}),
    })),
  };
  if (options.json) {
    process.stdout.write(JSON.stringify(ready) + '\n');
  } else {
    process.stdout.write(
      `caviar cluster up: coordinator ${cluster.coordinator}\n` +
        `dashboard ${cluster.dashboard}\n` +
        ready.processes
          .map((p) => `  ${p.role.padEnd(11)} ${p.id.padEnd(12)} pid ${p.pid}`)
          .join('\n') +
        `\nlogs in ${cluster.logDir}\nPrometheus targets (file_sd) in ${targets}\nsubmit with: caviar train --coordinator ${cluster.coordinator} --dataset mnist --model mlp:256\nCtrl-C stops it.\n`,
    );
  }
  // A role that dies is said so and started again; the rest of the cluster stays up.
  const supervisor = new ClusterSupervisor(cluster, {
    restart: options.restart !== false,
    onRestart: (role, id) => supervision.restarted(role, id),
  }).start();
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  supervisor.stop();
  await cluster.close();
  await metrics.close();
  return 0;
}
