import { CoordinatorClient } from '../core/coordinator-client';
import { LocalCluster, localClusterOptions, type LocalClusterFlags } from './local-cluster';

export interface ClusterChoice extends LocalClusterFlags {
  coordinator?: string;
  json?: boolean;
}

/**
 * Runs `work` against the cluster the flags name: a running one (`--coordinator`), or an
 * ephemeral local one started for it and torn down after. `validate` runs first, before any
 * process starts, so bad input costs one line and no cluster.
 */
export async function onCluster(
  choice: ClusterChoice,
  validate: () => Promise<unknown>,
  work: (client: CoordinatorClient) => Promise<number>,
): Promise<number> {
  let cluster: LocalCluster | undefined;
  let address = choice.coordinator;
  if (!address) {
    await validate();
    cluster = new LocalCluster(localClusterOptions(choice));
    if (!choice.json) {
      process.stderr.write(
        `starting a local cluster: ${choice.shards} shard(s), ${choice.workers} worker(s); logs in ${cluster.logDir}\n`,
      );
    }
    await cluster.start();
    process.stderr.write(cluster.membershipLine() + '\n');
    address = cluster.coordinator;
  }
  const client = new CoordinatorClient(address, { tls: choice.tls });
  try {
    return await work(client);
  } finally {
    client.close();
    await cluster?.close();
  }
}
