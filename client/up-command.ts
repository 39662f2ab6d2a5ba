import { LocalCluster, localClusterOptions, type LocalClusterFlags } from './local-cluster';

export interface UpOptions extends LocalClusterFlags {
  json?: boolean;
  memberTtl?: number;
}

/** `caviar up`: a local cluster that stays up until SIGINT or SIGTERM. */
export async function upCommand(options: UpOptions): Promise<number> {
  const cluster = new LocalCluster(localClusterOptions(options));
  await cluster.start();
  process.stderr.write(cluster.membershipLine() + '\n');
  const ready = {
    coordinator: cluster.coordinator,
    dashboard: null,
    metrics: [] as string[],
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
        ready.processes
          .map((p) => `  ${p.role.padEnd(11)} ${p.id.padEnd(12)} pid ${p.pid}`)
          .join('\n') +
        `\nlogs in ${cluster.logDir}\nsubmit with: caviar train --coordinator ${cluster.coordinator} --dataset mnist --model mlp:256\nCtrl-C stops it.\n`,
    );
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    // A role that dies takes the cluster down: an `up` that silently lost a shard would mislead.
    for (const p of cluster.processes) p.child.once('exit', () => resolve());
  });
  await cluster.close();
  return 0;
}
