import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { createLogger } from '../core/log';
import { announceReady, exitOnSignals } from '../core/role-process';
import { CoordinatorServer } from './server';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CommanderArgumentError('must be a non-negative integer');
  return n;
}

const program = new Command('caviar coordinator')
  .description('run the coordinator of a caviar cluster')
  .requiredOption('--ps <addresses>', 'parameter-server shard addresses, comma-separated host:port')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0 picks a free one)', positiveInt, 0)
  .option('--lease-ms <ms>', 'how long a worker may hold a task', positiveInt, 30_000)
  .configureOutput({ outputError: (text, write) => write(text.split('\n')[0] + '\n') })
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (opts: { ps: string; host: string; port: number; leaseMs: number }) => {
    const log = createLogger('coordinator');
    const shards = opts.ps
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const server = new CoordinatorServer({
      shards,
      log,
      host: opts.host,
      port: opts.port,
      leaseMs: opts.leaseMs,
    });
    const address = await server.start();
    log.info({ address, shards }, 'coordinator serving');
    announceReady({ role: 'coordinator', id: 'coordinator', address });
    exitOnSignals(log, () => server.close());
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`caviar coordinator: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
