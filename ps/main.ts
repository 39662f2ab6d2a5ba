import { Command, CommanderError, InvalidArgumentError as BadFlagError } from 'commander';
import { errorMessage } from '../core/errors';
import { formatMemorySize, parseMemorySize } from '../core/memory-size';
import { createLogger } from '../core/log';
import { announceReady, exitOnSignals } from '../core/role-process';
import {
  addMembershipOptions,
  membershipFrom,
  registrationFrom,
  type MembershipFlags,
} from '../core/membership-options';
import { addMetricsOptions, metricsServerFrom, type MetricsFlags } from '../core/metrics-options';
import { registerShardMetrics } from './shard-metrics';
import { ParameterServerShard } from './server';
import { FenceGuard } from './fence-guard';
import { FileCheckpointStore } from './checkpoint-store';
import { loopsInUse } from './native-loops';
import { SHARED_MEMORY_ENV, sharedMemoryDir } from '../core/shared-segment';
import { tlsOption, type TlsFlags } from '../core/security/tls-options';

export interface PsFlags extends MembershipFlags, MetricsFlags, TlsFlags {
  id: string;
  host: string;
  port: number;
  checkpointDir?: string;
  checkpointEvery: number;
  checkpointMs: number;
  maxMemory?: number;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65_535) throw new BadFlagError('must be an integer 0..65535');
  return port;
}

function parseSize(text: string): number {
  const n = parseMemorySize(text);
  if (n === undefined) throw new BadFlagError('must be a size such as 512MB or 4GB');
  return n;
}

function parseCount(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1) throw new BadFlagError('must be a positive integer');
  return n;
}

/** Parses `caviar ps` flags (argv as process.argv, the role already removed by bin/caviar.js). */
export function parsePsFlags(argv: readonly string[]): PsFlags {
  const program = addMetricsOptions(addMembershipOptions(new Command('caviar ps')))
    .description('a parameter-server shard')
    .addOption(tlsOption('ps'))
    .option('--id <id>', 'shard id, unique in the cluster', 'ps-0')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0 picks a free one)', parsePort, 0)
    .option(
      '--checkpoint-dir <dir>',
      'save state here, and restore the newest valid checkpoint at start',
    )
    .option(
      '--checkpoint-every <updates>',
      'checkpoint after this many optimizer updates',
      parseCount,
      50,
    )
    .option(
      '--checkpoint-ms <ms>',
      'checkpoint at least this often while anything changed',
      parseCount,
      2_000,
    )
    .option(
      '--max-memory <size>',
      "memory the trials' slices may take here (e.g. 4GB); default: half the machine's",
      parseSize,
    )
    .exitOverride()
    // main prints the one error line itself.
    .configureOutput({ outputError: () => {} });
  program.parse([...argv]);
  return program.opts<PsFlags>();
}

async function main(): Promise<void> {
  let flags: PsFlags;
  try {
    flags = parsePsFlags(process.argv);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.exitCode === 0) process.exit(0); // --help, --version
    process.stderr.write(`caviar ps: ${err.message.replace(/^error: /, '')}\n`);
    process.exit(2);
  }
  const log = createLogger('ps', { id: flags.id });
  const membership = membershipFrom(flags);
  const fence = membership ? new FenceGuard(membership) : undefined;
  await fence?.start();
  if (!membership) log.info('no --etcd: pushes are not fenced by membership leases');
  const { id, host, port } = flags;
  const checkpoints = flags.checkpointDir
    ? {
        store: new FileCheckpointStore(flags.checkpointDir, {
          onSkip: (file, reason) => log.warn({ file, reason }, 'skipping an unusable checkpoint'),
        }),
        everyUpdates: flags.checkpointEvery,
        everyMs: flags.checkpointMs,
      }
    : undefined;
  const metrics = metricsServerFrom(flags);
  // The shard is made after its observer, and read through `shard` only at scrape time.
  const observer = registerShardMetrics(metrics.registry, id, () => shard.metricsSnapshot());
  const shard = new ParameterServerShard({
    id,
    host,
    port,
    logger: log,
    fence,
    checkpoints,
    observer,
    sharedMemoryDir: sharedMemoryDir(),
    maxMemoryBytes: flags.maxMemory,
    tls: flags.tls,
  });
  const address = await shard.start();
  log.info(
    { dir: shard.options.sharedMemoryDir ?? null },
    shard.options.sharedMemoryDir
      ? 'same-host workers can attach shared-memory segments'
      : `no shared memory (${SHARED_MEMORY_ENV}): every worker streams chunks`,
  );
  await metrics.start();
  const keeper = registrationFrom(flags, { role: 'ps', id, address, pid: process.pid }, 'ps', {
    id,
  });
  await keeper?.start();
  exitOnSignals(log, async () => {
    await keeper?.close();
    await metrics.close();
    await shard.close();
    await fence?.close();
    await membership?.close();
  });
  log.info(
    {
      address,
      metrics: metrics.metricsUrl,
      maxMemory: formatMemorySize(shard.options.maxMemoryBytes),
    },
    'serving',
  );
  const loops = loopsInUse();
  if (loops.loops === 'native') log.info('optimizer loops: native');
  else log.info({ why: loops.why }, 'optimizer loops: JS (the native addon does not load)');
  announceReady({ role: 'ps', id: flags.id, address, metrics: metrics.metricsUrl });
}

main().catch((err: unknown) => {
  process.stderr.write(`caviar ps: ${errorMessage(err)}\n`);
  process.exit(1);
});
