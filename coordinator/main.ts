import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { createLogger } from '../core/log';
import { announceReady, exitOnSignals } from '../core/role-process';
import {
  addMembershipOptions,
  etcdEndpoints,
  etcdSecurity,
  membershipFrom,
  registrationFrom,
  type MembershipFlags,
} from '../core/membership-options';
import { addMetricsOptions, metricsServerFrom, type MetricsFlags } from '../core/metrics-options';
import { oncePerTurn } from '../core/metric-fill';
import { CoordinatorServer } from './server';
import { EtcdRecordStore } from './record-store';
import type { PersistedTrial } from './trial-state';
import type { PersistedSweep } from './sweep-run';
import { becomeLeader } from './leader-election';
import { createEtcdClient } from '../core/etcd-client';
import { CountingMembership } from './member-departures';
import { registerTrialMetrics } from './trial-metrics';
import { registerClusterMetrics } from './cluster-metrics';
import { dashboardRoutes } from './dashboard/server';
import { DEFAULT_BATCHES_PER_LEASE } from './work-dispatch';
import { tlsOption, type TlsFlags } from '../core/security/tls-options';
import { commaList } from '../core/comma-list';

interface CoordinatorFlags extends MembershipFlags, MetricsFlags, TlsFlags {
  ps: string;
  host: string;
  port: number;
  leaseMs: number;
  batchesPerLease: number;
  advertise?: string;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CommanderArgumentError('must be a non-negative integer');
  return n;
}

function positiveInt(value: string): number {
  const n = nonNegativeInt(value);
  if (n < 1) throw new CommanderArgumentError('must be at least 1');
  return n;
}

const program = addMetricsOptions(addMembershipOptions(new Command('caviar coordinator')))
  .addOption(tlsOption('coordinator'))
  .description('run the coordinator of a caviar cluster')
  .requiredOption('--ps <addresses>', 'parameter-server shard addresses, comma-separated host:port')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0 picks a free one)', nonNegativeInt, 0)
  .option(
    '--advertise <host:port>',
    'where workers reach this coordinator, registered in etcd for them to follow (default: the address it listens on; set it when listening on 0.0.0.0)',
  )
  .option('--lease-ms <ms>', 'how long a worker may hold a task', nonNegativeInt, 30_000)
  .option(
    '--batches-per-lease <n>',
    'async trials: mini-batches a worker takes per lease (one AcquireWork, one report)',
    positiveInt,
    DEFAULT_BATCHES_PER_LEASE,
  )
  .configureOutput({ outputError: (text, write) => write(text.split('\n')[0] + '\n') })
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (flags: CoordinatorFlags) => {
    const log = createLogger('coordinator');
    const shards = commaList(flags.ps);
    const etcd = membershipFrom(flags);
    // Counts the members whose lease ends, for caviar_cluster_lease_losses_total.
    const membership = etcd && new CountingMembership(etcd);
    if (!membership)
      log.info('no --etcd: membership is the workers polling this coordinator, without fencing');
    const etcdClient = flags.etcd
      ? createEtcdClient(etcdEndpoints(flags), etcdSecurity(flags))
      : undefined;
    // Trials and sweeps live in etcd, so a restarted or standby coordinator takes them over.
    const store = etcdClient && {
      trials: new EtcdRecordStore<PersistedTrial>(
        etcdClient,
        `/caviar/${flags.cluster}/trials/`,
        log,
      ),
      sweeps: new EtcdRecordStore<PersistedSweep>(
        etcdClient,
        `/caviar/${flags.cluster}/sweeps/`,
        log,
      ),
    };
    const server = new CoordinatorServer({
      shards,
      log,
      host: flags.host,
      port: flags.port,
      leaseMs: flags.leaseMs,
      batchesPerLease: flags.batchesPerLease,
      membership,
      store,
      tls: flags.tls,
    });
    // The dashboard shares the metrics HTTP server: one port per process to open or forward.
    const metrics = metricsServerFrom(flags, dashboardRoutes(server));
    // One read of the trials per scrape, shared by every family.
    const statuses = oncePerTurn(() => server.trialStatuses());
    registerTrialMetrics(metrics.registry, statuses);
    registerClusterMetrics(metrics.registry, {
      members: () => server.clusterMembers(),
      trials: statuses,
      departures: () => membership?.departures ?? new Map(),
    });
    // Metrics and the dashboard come up first, so a standby shows what it waits for.
    const dashboard = await metrics.start();
    if (etcdClient) await becomeLeader(etcdClient, flags, log);
    const address = await server.start();
    const keeper = registrationFrom(
      flags,
      {
        role: 'coordinator',
        id: 'coordinator',
        address: flags.advertise ?? address,
        pid: process.pid,
      },
      'coordinator',
    );
    await keeper?.start();
    log.info(
      { address, shards, etcd: flags.etcd ?? null, dashboard: `${dashboard}/` },
      'coordinator serving',
    );
    announceReady({
      role: 'coordinator',
      id: 'coordinator',
      address,
      metrics: metrics.metricsUrl,
      dashboard: `${dashboard}/`,
    });
    exitOnSignals(log, async () => {
      await keeper?.close();
      await metrics.close();
      await server.close();
      await store?.trials.close();
      await store?.sweeps.close();
      await membership?.close();
      etcdClient?.close();
    });
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`caviar coordinator: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
