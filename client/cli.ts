import { Command, Option } from 'commander';
import { CoordinatorClient } from '../core/coordinator-client';
import { BACKEND_CHOICES, COMPUTE_THREAD_CHOICES } from '../core/backend-choice';
import { exitWithError, UsageError } from './exit-codes';
import {
  parseImageSize,
  parseIntIn,
  parseNonNegativeNumber,
  parsePositiveNumber,
} from './option-parsers';
import { trainCommand, type TrainOptions } from './train-command';
import { upCommand, type UpOptions } from './up-command';
import { trialsTable, trainSummary } from './summary';
import { sweepCommand, type SweepOptions } from './sweep-command';
import { reportCommand, type ReportOptions } from './report-command';
import { certsCommand, type CertsOptions } from './certs-command';
import { tlsOption } from '../core/security/tls-options';
import type { TlsIdentity } from '../core/security/tls-identity';

const DEFAULT_COORDINATOR = process.env.CAVIAR_COORDINATOR ?? '127.0.0.1:7070';

/** Runs a command's action and exits with its code; errors become one line and exit 1 or 2. */
function action<A extends unknown[]>(
  fn: (...args: A) => Promise<number>,
): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      exitWithError(err);
    }
  };
}

/** The flags that name a running cluster. */
interface RunningCluster {
  coordinator: string;
  tls?: TlsIdentity;
}

/** The commands that talk to a running cluster take --coordinator and --tls. */
const RUNNING_CLUSTER_COMMANDS = ['status', 'trials', 'report', 'tune', 'pause', 'resume', 'stop'];

function addRunningClusterOptions(program: Command): void {
  for (const command of program.commands) {
    if (!RUNNING_CLUSTER_COMMANDS.includes(command.name())) continue;
    command
      .option('--coordinator <host:port>', 'the cluster', DEFAULT_COORDINATOR)
      .addOption(tlsOption('client'));
  }
}

function withCoordinator<T>(
  cluster: RunningCluster,
  fn: (client: CoordinatorClient) => Promise<T>,
): Promise<T> {
  const client = new CoordinatorClient(cluster.coordinator, {
    deadlineMs: 10_000,
    tls: cluster.tls,
  });
  return fn(client).finally(() => client.close());
}

function clusterOptions(command: Command): Command {
  return command
    .option('--workers <n>', 'worker processes of a local cluster', parseIntIn(1, 64), 2)
    .option('--shards <n>', 'parameter-server shards of a local cluster', parseIntIn(1, 64), 2)
    .addOption(
      new Option('--backend <name>', 'compute backend of the workers')
        .choices(BACKEND_CHOICES)
        .default('auto'),
    )
    .option(
      '--lease-ms <ms>',
      'how long a worker may hold a mini-batch before it goes to another',
      parseIntIn(100, 3_600_000),
    )
    .option(
      '--etcd <auto|none|url>',
      'membership: start an etcd when installed (auto), run without (none), or use this one',
      'auto',
    )
    .option('--member-ttl <seconds>', 'membership lease TTL', parseIntIn(1, 3_600))
    .addOption(tlsOption('client'))
    .option(
      '--threads <n>',
      'compute threads per worker (blas backend); workers x threads <= cores',
      parseIntIn(1, 256),
      1,
    )
    .addOption(
      new Option(
        '--compute-thread <where>',
        "workers' models compute on a thread of their own: all (on), large ones (auto), none (off)",
      )
        .choices(COMPUTE_THREAD_CHOICES)
        .default('auto'),
    );
}

export function buildProgram(): Command {
  const program = new Command('caviar')
    .description('a parameter-server training cluster that runs many trials at once')
    .showHelpAfterError(false)
    .configureOutput({ outputError: (text, write) => write(text.split('\n')[0] + '\n') })
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .addHelpText(
      'after',
      '\nRoles of a real cluster: caviar coordinator --ps ADDR,... | caviar ps | caviar worker --coordinator ADDR',
    );

  clusterOptions(
    program
      .command('train')
      .description('train one model, on an ephemeral local cluster (default) or a running one')
      .option('--local', 'start a local cluster for this run and tear it down after (the default)')
      .option('--coordinator <host:port>', 'submit to a running cluster instead')
      .requiredOption(
        '--dataset <spec>',
        'mnist | csv:PATH | images:DIR (a sub-folder per class) | idx:IMAGES,LABELS | synthetic:spirals',
      )
      .option(
        '--label-column <name>',
        'the label column of a CSV data set (default: the last column)',
      )
      .option(
        '--image-size <HxW>',
        'resize every image of an images:DIR data set to this size (default: they must share one)',
        parseImageSize,
      )
      .option(
        '--model <spec>',
        'mlp:256[,128] | lenet5 | resnet:N | vgg:small | a layer-graph JSON or YAML file',
        'mlp:256',
      )
      .addOption(
        new Option('--optimizer <name>', 'server-side optimizer')
          .choices(['adam', 'sgd', 'momentum', 'rmsprop'])
          .default('adam'),
      )
      .option('--lr <rate>', 'learning rate', parsePositiveNumber, 1e-3)
      .option('--lr-decay <schedule>', 'inverse:k | step:gamma:n | exp:gamma')
      .option('--l2 <lambda>', 'L2 weight decay', parseNonNegativeNumber, 0)
      .option('--batch <n>', 'mini-batch size', parseIntIn(1, 65_536), 128)
      .option('--epochs <n>', 'epochs', parseIntIn(1, 100_000), 5)
      .addOption(
        new Option(
          '--mode <mode>',
          'consistency: sync averages one gradient per worker per step; ssp:N bounds staleness to N versions',
        ).default('async'),
      )
      .option('--seed <n>', 'seed of initialization and shuffling', parseIntIn(0, 2 ** 31 - 1), 1)
      .option(
        '--augment <spec>',
        'augment training batches: flip:h|v|hv, crop:PAD, shift:FRAC, rotate:DEG, shear:DEG, color:AMOUNT, comma-separated',
      )
      .addOption(
        new Option(
          '--compress <codec>',
          'gradient compression of pushes: none | bf16 | fp16 | topk:RATIO (with error feedback)',
        ).default('none'),
      )
      .addOption(
        new Option(
          '--compress-pull <codec>',
          'values pulled across a network as none | bf16 | fp16 (the shards keep float32)',
        ).default('none'),
      )
      .option(
        '--overlap',
        'async and ssp:N: compute each batch while the push before it travels, from values one step older',
      )
      .option(
        '--init-from <trial|dir>',
        'start from a trial of the cluster or an exported model directory (tensors matched by layer name and shape)',
      )
      .option(
        '--freeze <n|layers>',
        'keep the first N layers with parameters, or these comma-separated layers, as they start',
      )
      .option(
        '--reinit <layers>',
        'comma-separated layers drawn from the seed instead of taken from --init-from (a new head)',
      )
      .option(
        '--clip-norm <norm>',
        'clip gradients to this global norm (0: off)',
        parseNonNegativeNumber,
        0,
      )
      .option('--name <id>', 'the trial id (default: trial-N)')
      .option(
        '--export <dir>',
        'write the trained model as a tfjs LayersModel (model.json + weights.bin)',
      )
      .option('--json', 'print the summary as one JSON object on the last line of stdout'),
  ).action(
    action(async (opts: TrainOptions) => {
      if (opts.local && opts.coordinator)
        throw new UsageError('--local and --coordinator exclude each other');
      return trainCommand(opts);
    }),
  );

  clusterOptions(program.command('up').description('start a local cluster and keep it running'))
    .option('--json', 'print one JSON line when the cluster is ready')
    .option('--no-restart', 'leave a role process that dies down instead of starting it again')
    .action(action((opts: UpOptions) => upCommand(opts)));

  program
    .command('status')
    .description('the members of a running cluster')
    .option('--json', 'JSON output')
    .action(
      action((opts: RunningCluster & { json?: boolean }) =>
        withCoordinator(opts, async (client) => {
          const state = await client.clusterInfo();
          if (opts.json) process.stdout.write(JSON.stringify(state) + '\n');
          else
            for (const m of state.members)
              process.stdout.write(
                `${m.role.padEnd(12)} ${m.id.padEnd(14)} ${m.address || '-'} ${m.pid || ''} ${m.backend}\n`,
              );
          return 0;
        }),
      ),
    );

  program
    .command('trials')
    .description('the trials of a running cluster')
    .option('--json', 'JSON output')
    .action(
      action((opts: RunningCluster & { json?: boolean }) =>
        withCoordinator(opts, async (client) => {
          const trials = await client.listTrials();
          process.stdout.write(
            (opts.json ? JSON.stringify(trials.map(trainSummary)) : trialsTable(trials)) + '\n',
          );
          return 0;
        }),
      ),
    );

  program
    .command('report')
    .argument('<name>', 'a sweep or a trial')
    .description("a sweep's leaderboard and verdicts, or a trial's learning curve")
    .option('--json', 'JSON output')
    .option(
      '--out <dir>',
      "write an HTML report into DIR: leaderboard, verdicts, curves, scatters, the winner's errors",
    )
    .action(
      action((name: string, opts: RunningCluster & ReportOptions) =>
        withCoordinator(opts, (client) => reportCommand(client, name, opts)),
      ),
    );

  clusterOptions(
    program
      .command('sweep')
      .argument('<spec>', 'a sweep spec, YAML or JSON (see examples/mnist-sweep.yaml)')
      .description('run many trials at once and pick the best by one number')
      .option(
        '--local',
        'start a local cluster for this sweep and tear it down after (the default)',
      )
      .option('--coordinator <host:port>', 'submit to a running cluster instead')
      .option('--json', 'print the sweep summary as one JSON object on the last line of stdout'),
  ).action(
    action(async (spec: string, opts: SweepOptions & { local?: boolean }) => {
      if (opts.local && opts.coordinator)
        throw new UsageError('--local and --coordinator exclude each other');
      return sweepCommand(spec, opts);
    }),
  );

  program
    .command('tune')
    .argument('<trial>', 'trial id')
    .description("change a running trial's learning rate (panda mode)")
    .requiredOption('--lr <rate>', 'the new base learning rate', parsePositiveNumber)
    .action(
      action((trial: string, opts: RunningCluster & { lr: number }) =>
        withCoordinator(opts, async (client) => {
          const status = await client.tuneTrial(trial, opts.lr);
          process.stdout.write(`${status.trial}: learning rate ${status.spec?.optimizer?.lr}\n`);
          return 0;
        }),
      ),
    );

  for (const [verb, what] of [
    ['pause', "pause a running trial (its workers take other trials' batches)"],
    ['resume', 'resume a paused trial'],
  ] as const) {
    program
      .command(verb)
      .argument('<trial>', 'trial id')
      .description(what)
      .action(
        action((trial: string, opts: RunningCluster) =>
          withCoordinator(opts, async (client) => {
            const status =
              verb === 'pause' ? await client.pauseTrial(trial) : await client.resumeTrial(trial);
            process.stdout.write(`${status.trial}: ${status.status}\n`);
            return 0;
          }),
        ),
      );
  }

  program
    .command('stop')
    .argument('<trial>', 'trial id')
    .description('stop a running trial')
    .action(
      action((trial: string, opts: RunningCluster) =>
        withCoordinator(opts, async (client) => {
          const status = await client.stopTrial(trial);
          process.stdout.write(`${status.trial}: ${status.status}\n`);
          return 0;
        }),
      ),
    );

  program
    .command('certs')
    .argument('<dir>', "the folder to write ca.pem and each role's certificate and key into")
    .description('mint a development CA and a certificate per role, for --tls DIR')
    .option(
      '--hosts <names>',
      'host names and addresses the servers are reached at, comma-separated (besides localhost and this host)',
      '',
    )
    .option('--days <n>', 'how long the certificates stay valid', parseIntIn(1, 3_650), 365)
    .option('--force', 'replace a set already in the folder')
    .action(action((dir: string, opts: CertsOptions) => certsCommand(dir, opts)));

  addRunningClusterOptions(program);
  return program;
}

if (
  require.main === module ||
  process.argv[1]?.endsWith('caviar.js') ||
  process.argv[1]?.endsWith('caviar')
) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => exitWithError(err));
}
