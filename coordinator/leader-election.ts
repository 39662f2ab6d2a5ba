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
  const value = JSON.stringify({ host: who.host, port: who.port, pid: process.pid });
  const campaign = (): Promise<unknown> => {
    const attempt = election.campaign(value);
    attempt.on('error', (err: Error) => {
      log.warn({ err: errorMessage(err) }, 'coordinator election failed; campaigning again');
      setTimeout(() => void campaign().catch(() => undefined), 1_000).unref();
    });
    return attempt.wait();
  };
  log.info('campaigning to lead the cluster');
  await campaign();
  log.info('elected leader');
}
