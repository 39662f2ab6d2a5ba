import type { Etcd3 } from 'etcd3';
import { errorMessage } from '../core/errors';
import type { Logger } from '../core/log';

/**
 * Waits until this coordinator leads its cluster (etcd election on a lease): a standby waits
 * here until the leader's lease ends. A campaign that fails later (etcd down longer than the
 * TTL) campaigns again while this coordinator keeps serving: even two coordinators handing out
 * the same batch for a moment cannot double it, since shards apply each (trial, epoch, batch)
 * once.
 */
export async function becomeLeader(
  client: Etcd3,
  who: { cluster: string; host: string; port: number },
  log: Logger,
  ttlSeconds = 3,
): Promise<void> {
  const election = client.election(`/caviar/${who.cluster}/coordinator-election`, ttlSeconds);
  const campaign = election.campaign(
    JSON.stringify({ host: who.host, port: who.port, pid: process.pid }),
  );
  campaign.on('error', (err: Error) => {
    log.fatal({ err: errorMessage(err) }, 'lost the coordinator election; exiting');
    process.exit(1);
  });
  log.info('campaigning to lead the cluster');
  await campaign.wait();
  log.info('elected leader');
}
