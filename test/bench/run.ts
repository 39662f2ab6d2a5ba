/**
 * `npm run bench`: issue 3's benchmark. One JSON line per configuration on stdout, then one
 * summary line; progress goes to stderr. Each section runs from a file of its own:
 *
 *   cluster    cluster.ts: caviar train --local on MNIST, mlp:256, batch 128, Adam 1e-3, 2 epochs,
 *              for workers {1,2} x shards {1,2} x mode {sync,async}, as child processes
 *   single     compute-limit.ts: gradients() alone in one process, per backend (wasm, cpu, auto)
 *   synthetic  synthetic.ts: the cluster with --backend synthetic (no compute): pull, push and
 *              apply rates
 *   wire       wire.ts: one pull + push of the MLP's parameters over gRPC against the same bytes
 *              over bare TCP: the share of the loopback limit
 *   peer       peer.ts: the cluster's W/mode pairs against a PyTorch RPC parameter server, when
 *              python3 can import torch; then 2 workers for 10 epochs, where start-up weighs less
 *   kernels    kernels.ts: gradients() per compute backend, in this process
 *   augment    augment.ts: ms per MNIST batch of 128 of each augmentation on the worker
 *   convnets   convnets.ts: LeNet-5 and a small BatchNorm ResNet, caviar (1 and 2 workers)
 *              against torch on the same layer graph (single, DDP), run by run alternately
 *   sweep      sweep.ts: 16 trials as a sweep 4 at a time against one by one
 *   warm       warm-cluster.ts: the 2-worker, 1-shard cluster figure on a cluster already running
 *   large      large-model.ts: a 140M-parameter trial on 2 workers and 2 shards; only when asked
 *              for with --only, since it needs about 8 GB and minutes
 *   multihost  multihost.ts: caviar against DDP on the multi-host test bed (root), unlimited and
 *              1 Gbit/s links; only with --only
 *
 * Options: --runs N (repeat each cluster, synthetic and peer run; median and min/max), --quick
 * (workers 2 shards 2 async, single-process, synthetic, wire), --only with a comma-separated
 * list of sections, --timeout-s (the time limit of one child process).
 */
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError } from 'commander';
import { commaList } from '../../core/comma-list';
import { benchAugment } from './augment';
import { killChildrenOnSignal } from './children';
import { benchCluster } from './cluster';
import { computeLimits } from './compute-limit';
import { benchConvnets } from './convnets';
import { benchKernels } from './kernels';
import { benchConvnetKernels } from './kernels-torch';
import { benchLarge } from './large-model';
import { benchMultihost } from './multihost';
import { benchPeer } from './peer';
import { BenchReport, type SectionOptions } from './report';
import { round } from './stats';
import { benchSweep } from './sweep';
import { benchSynthetic } from './synthetic';
import { benchWarmCluster } from './warm-cluster';
import { benchWire } from './wire';

const SECTIONS = [
  'cluster',
  'single',
  'synthetic',
  'wire',
  'peer',
  'kernels',
  'convnets',
  'augment',
  'sweep',
  'warm',
  'large',
  'multihost',
] as const;
type Section = (typeof SECTIONS)[number];

interface BenchOptions extends SectionOptions {
  quick: boolean;
  only: Section[];
}

function parseOptions(argv: string[]): BenchOptions {
  const program = new Command('bench')
    .description("caviar's benchmark (issue 3): one JSON line per configuration on stdout")
    .option(
      '--runs <n>',
      'repeat each cluster, synthetic and peer run N times',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1)
          throw new InvalidArgumentError('expected an integer ≥ 1');
        return n;
      },
      1,
    )
    .option('--quick', 'only workers 2 shards 2 async, single-process and synthetic', false)
    .option('--only <sections>', `comma-separated: ${SECTIONS.join(',')}`, (v) => {
      const list = commaList(v);
      for (const s of list) {
        if (!(SECTIONS as readonly string[]).includes(s))
          throw new InvalidArgumentError(`unknown section "${s}"; expected ${SECTIONS.join(',')}`);
      }
      return list as Section[];
    })
    .option('--timeout-s <s>', 'time limit of one child process', (v) => Number(v), 600)
    .parse(argv);
  const opts = program.opts<Omit<BenchOptions, 'only'> & { only?: Section[] }>();
  const only =
    opts.only ??
    (opts.quick
      ? ['cluster', 'single', 'synthetic', 'wire']
      : SECTIONS.filter((s) => s !== 'large' && s !== 'multihost'));
  return { runs: opts.runs, quick: opts.quick, only, timeoutS: opts.timeoutS };
}

/** The sections after the compute limit (which the cluster's lines divide by), in run order. */
function sectionRunners(
  o: BenchOptions,
  report: BenchReport,
  single: ReadonlyMap<string, number>,
): Array<[Exclude<Section, 'single'>, () => Promise<void>]> {
  return [
    ['cluster', () => benchCluster(o, report, single)],
    ['synthetic', () => benchSynthetic(o, report)],
    ['wire', () => benchWire(o, report)],
    ['peer', () => benchPeer(o, report)],
    [
      'kernels',
      async () => {
        (await benchKernels()).forEach((row) => report.emit({ ...row }));
        await benchConvnetKernels(o.timeoutS, report.emit);
      },
    ],
    ['augment', async () => (await benchAugment()).forEach(report.emit)],
    ['convnets', () => benchConvnets(o, report)],
    ['sweep', () => benchSweep(o, report)],
    ['warm', () => benchWarmCluster(o, report)],
    ['large', () => benchLarge(o, report)],
    ['multihost', () => benchMultihost(o, report)],
  ];
}

/** The last line: the machine, and the headline figure of each section that ran. */
function summaryLine(
  o: BenchOptions,
  report: BenchReport,
  seconds: number,
): Record<string, unknown> {
  const pick = (bench: string): Record<string, unknown>[] => report.linesOf(bench);
  return {
    bench: 'summary',
    seconds: round(seconds, 1),
    runs: o.runs,
    quick: o.quick,
    only: o.only,
    machine: {
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? '',
      memory_gb: round(os.totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    single_process: Object.fromEntries(
      pick('single_process').map((l) => [String(l.requested), l.examples_per_s ?? null]),
    ),
    auto_backend: pick('single_process').find((l) => l.requested === 'auto')?.backend ?? null,
    cluster: pick('cluster').map((l) => ({
      workers: l.workers,
      shards: l.shards,
      mode: l.mode,
      examples_per_s: l.examples_per_s ?? null,
      spread: l.spread ?? null,
      scaling_efficiency: l.scaling_efficiency ?? null,
    })),
    system_path: pick('system_path').map((l) => ({
      mode: l.mode,
      examples_per_s: l.examples_per_s ?? null,
      applies_per_s: l.applies_per_s ?? null,
    })),
    peer: pick('peer').map((l) =>
      l.skipped
        ? { skipped: l.skipped }
        : { workers: l.workers, mode: l.mode, epochs: l.epochs, ratio: l.ratio ?? null },
    ),
    wire: pick('wire')[0] ?? null,
    warm_cluster: pick('warm_cluster').map((l) => ({
      mode: l.mode,
      examples_per_s: l.examples_per_s ?? null,
      spread: l.spread ?? null,
    })),
    sweep: pick('sweep')[0] ?? null,
    large: pick('large')[0] ?? null,
    errors: report.errors,
  };
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv);
  killChildrenOnSignal();
  const report = new BenchReport();
  const started = performance.now();
  const has = (s: Section): boolean => o.only.includes(s);
  report.log(
    `sections ${o.only.join(',')}, runs ${o.runs}${o.quick ? ', quick' : ''}; ${os.cpus().length} cpu(s)`,
  );
  // The compute limit, per backend, first: the cluster lines divide by it.
  const single =
    has('single') || has('cluster')
      ? await computeLimits(has('single'), o.timeoutS, report)
      : new Map<string, number>();
  for (const [section, run] of sectionRunners(o, report, single)) if (has(section)) await run();
  report.emit(summaryLine(o, report, (performance.now() - started) / 1000));
  return report.errors.length ? 1 : 0;
}

// `node --test dist/test/` runs every file under dist/test; a bench must not start there.
if (require.main === module && !process.env.NODE_TEST_CONTEXT) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
