import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger } from '../core/log';
import { announceReady, exitOnSignals } from '../core/role-process';
import {
  addMembershipOptions,
  membershipFrom,
  registrationFrom,
  type MembershipFlags,
} from '../core/membership-options';
import { addMetricsOptions, metricsServerFrom, type MetricsFlags } from '../core/metrics-options';
import { registerWorkerMetrics } from './worker-metrics';
import { BACKEND_CHOICES, type BackendChoice } from './compute-backend';
import { startComputeService } from './compute-thread';
import { COMPUTE_THREAD_CHOICES, type ComputeThreadChoice } from '../core/backend-choice';
import { Worker } from './loop';
import { sharedMemoryDir } from '../core/shared-segment';
import { tlsOption, type TlsFlags } from '../core/security/tls-options';

interface WorkerFlags extends MembershipFlags, MetricsFlags, TlsFlags {
  coordinator: string;
  id: string;
  backend: BackendChoice;
  threads: number;
  computeThread: ComputeThreadChoice;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

const program = addMetricsOptions(addMembershipOptions(new Command('caviar worker')))
  .addOption(tlsOption('worker'))
  .description('run a worker of a caviar cluster')
  .requiredOption(
    '--coordinator <address>',
    'the coordinator, host:port (with --etcd, a standby that takes over elsewhere is followed)',
  )
  .option('--id <id>', "this worker's id", `worker-${process.pid}`)
  .addOption(
    new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'),
  )
  .option(
    '--threads <n>',
    'BLAS threads of the blas backend (one worker process per core wants 1)',
    wholeNumber,
    1,
  )
  .addOption(
    new Option(
      '--compute-thread <where>',
      'compute on a thread of its own: every model (on), large ones (auto), none (off)',
    )
      .choices(COMPUTE_THREAD_CHOICES)
      .default('auto'),
  )
  .configureOutput({ outputError: (text, write) => write(text.split('\n')[0] + '\n') })
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (flags: WorkerFlags) => {
    const log = createLogger('worker', { id: flags.id });
    const backend = await startComputeService(flags.backend, {
      threads: flags.threads,
      thread: flags.computeThread,
      log,
      logName: 'worker',
      logBindings: { id: flags.id },
      // A worker whose models can no longer compute ends, to be started again (caviar up, a
      // supervisor), rather than fail every task it takes.
      onThreadLost: (why) => {
        log.error({ err: why.message }, 'the compute thread is gone; exiting');
        process.exit(1);
      },
    });
    const membership = membershipFrom(flags);
    const keeper = registrationFrom(
      flags,
      { role: 'worker', id: flags.id, pid: process.pid, backend: backend.name },
      'worker',
      { id: flags.id },
    );
    await keeper?.start();
    const metrics = metricsServerFrom(flags);
    await metrics.start();
    const worker = new Worker({
      id: flags.id,
      coordinator: flags.coordinator,
      compute: backend,
      log,
      fenceToken: keeper ? () => keeper.token : undefined,
      sharedMemoryDir: sharedMemoryDir(),
      tls: flags.tls,
      metrics: registerWorkerMetrics(metrics.registry, flags.id, backend.name),
      // The elected coordinator registers its address: a standby that took over is found there.
      findCoordinator: membership
        ? async () => (await membership.list('coordinator'))[0]?.address
        : undefined,
    });
    await worker.start();
    exitOnSignals(log, async () => {
      await worker.close();
      await backend.close();
      await metrics.close();
      await keeper?.close();
      await membership?.close();
    });
    log.info(
      {
        coordinator: flags.coordinator,
        backend: backend.name,
        computeThread: flags.computeThread,
        etcd: flags.etcd ?? null,
      },
      'worker running',
    );
    announceReady({
      role: 'worker',
      id: flags.id,
      address: '',
      backend: backend.name,
      metrics: metrics.metricsUrl,
    });
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`caviar worker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
