import { Command, Option } from 'commander';
import { createLogger } from '../core/log';
import { announceReady, exitOnSignals } from '../core/role-process';
import { BACKEND_CHOICES, type BackendChoice } from './compute-backend';
import { selectBackend } from './select-backend';
import { Worker } from './loop';

const program = new Command('caviar worker')
  .description('run a worker of a caviar cluster')
  .requiredOption('--coordinator <address>', 'the coordinator, host:port')
  .option('--id <id>', "this worker's id", `worker-${process.pid}`)
  .addOption(
    new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'),
  )
  .configureOutput({ outputError: (text, write) => write(text.split('\n')[0] + '\n') })
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async (opts: { coordinator: string; id: string; backend: BackendChoice }) => {
    const log = createLogger('worker', { id: opts.id });
    const backend = await selectBackend(opts.backend, log);
    const worker = new Worker({ id: opts.id, coordinator: opts.coordinator, backend, log });
    await worker.start();
    log.info({ coordinator: opts.coordinator, backend: backend.name }, 'worker running');
    announceReady({ role: 'worker', id: opts.id, address: '', backend: backend.name });
    exitOnSignals(log, () => worker.close());
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`caviar worker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
