import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { createLogger } from '../core/log';
import { announceReady, exitOnSignals } from '../core/role-process';
import {
  addMembershipOptions,
  membershipFrom,
  type MembershipFlags,
} from '../core/membership-options';
import { RegistrationKeeper } from '../core/registration-keeper';
import { CoordinatorServer } from './server';

interface CoordinatorFlags extends MembershipFlags {
  ps: string;
  host: string;
  port: number;
  leaseMs: number;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CommanderArgumentError('must be a non-negative integer');
  return n;
}

const program = addMembershipOptions(new Command('caviar coordinator'))
  .description('run the coordinator of a caviar cluster')
  .requiredOption('--ps <addresses>', 'parameter-server shard addresses, comma-separated host:port')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0 picks a free one)', nonNegativeInt, 0)
  .option('--lease-ms <ms>', 'how long a worker may hold a task', nonNegativeInt, 30_000)
  .configureOutput({ outputError: (text, write) => write(text.split('\n')[0] + '\n') })
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (flags: CoordinatorFlags) => {
    const log = createLogger('coordinator');
    const shards = flags.ps
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const membership = membershipFrom(flags);
    if (!membership)
      log.info('no --etcd: membership is the workers polling this coordinator, without fencing');
    const server = new CoordinatorServer({
      shards,
      log,
      host: flags.host,
      port: flags.port,
      leaseMs: flags.leaseMs,
      membership,
    });
    const address = await server.start();
    const keeper =
      membership &&
      new RegistrationKeeper(
        membership,
        { role: 'coordinator', id: 'coordinator', address, pid: process.pid },
        log,
      );
    await keeper?.start();
    log.info({ address, shards, etcd: flags.etcd ?? null }, 'coordinator serving');
    announceReady({ role: 'coordinator', id: 'coordinator', address });
    exitOnSignals(log, async () => {
      await keeper?.close();
      await server.close();
      await membership?.close();
    });
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`caviar coordinator: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
