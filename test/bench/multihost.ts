/**
 * The multihost section of `npm run bench`: caviar and PyTorch DDP on the multi-host test bed
 * (test/multihost/testbed.ts), back to back on the same hosts and links: 2 worker hosts, 1 or 2
 * shard hosts, the coordinator on its own, links unlimited and at 1 Gbit/s; caviar for
 * compression none, bf16 (pushes, and pushes and pulls) and topk:0.01 in sync and async mode
 * (async with and without --overlap),
 * with the bytes a batch puts on the shard hosts' links, and DDP (one process per worker host,
 * gloo) between them. Needs root; where the bed cannot be built it says why and emits nothing.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, testOutputDir } from '../helpers/repo';
import { MultiHostBed, testbedUnavailable, type HostSpec } from '../multihost/testbed';
import { lastJsonLine, mnistDigitsDir, torchPython } from './children';
import { messageOf, type BenchReport, type SectionOptions } from './report';
import { round, spreadOf } from './stats';

const DDP_SCRIPT = path.resolve(REPO_ROOT, '..', 'shared', 'bench', 'peer_torch_ddp.py');
const EPOCHS = 10;
const BATCH = 128;
const LINKS = [undefined, '1gbit'] as const;
/** Modes, and async with --overlap (its pushes travel while the next batch computes). */
const MODES = ['sync', 'async', 'async+overlap'] as const;
/** Pushes' compression, and the pulls' after a slash ("bf16/bf16": 16-bit floats both ways). */
const COMPRESSIONS = ['none', 'bf16', 'bf16/bf16', 'topk:0.01'] as const;
/** Where the shards run: one host, or two whose links add up; the second tries fewer settings. */
const SHARD_LAYOUTS = [
  { shards: ['ps0'], compressions: COMPRESSIONS },
  { shards: ['ps0', 'ps1'], compressions: ['none', 'bf16/bf16'] },
] as const;
/** The workers' backend: the fastest CPU one (the blas addon where it is built), as users get. */
const BACKEND = 'auto';

interface Figure {
  examples_per_s: number;
  val_accuracy: number | null;
  batches_applied: number;
  backend?: string;
}

function hosts(rate: string | undefined): HostSpec[] {
  return ['ctl', 'ps0', 'ps1', 'w0', 'w1', 'cli'].map((name) => ({
    name,
    ...(rate ? { rate } : {}),
  }));
}

/** Bytes through the links of `names` so far, both directions. */
function linkBytes(bed: MultiHostBed, names: readonly string[]): number {
  return names.reduce((total, name) => {
    const { namespace, device } = bed.host(name);
    const out = execFileSync('ip', ['-n', namespace, '-s', '-j', 'link', 'show', 'dev', device], {
      encoding: 'utf8',
    });
    const [stats] = JSON.parse(out) as Array<{
      stats64: { rx: { bytes: number }; tx: { bytes: number } };
    }>;
    return total + stats.stats64.rx.bytes + stats.stats64.tx.bytes;
  }, 0);
}

async function caviarRun(
  bed: MultiHostBed,
  coordinator: string,
  mode: string,
  compression: string,
): Promise<Figure> {
  const [compress, compressPull = 'none'] = compression.split('/');
  const [trialMode, overlap] = mode.split('+');
  const { code, stdout } = await bed.caviarOutput('cli', 'train.log', [
    ...['train', '--coordinator', coordinator, '--dataset', 'mnist', '--model', 'mlp:256'],
    ...['--batch', String(BATCH), '--epochs', String(EPOCHS), '--mode', trialMode],
    ...['--compress', compress, '--compress-pull', compressPull, '--json'],
    ...(overlap ? ['--overlap'] : []),
  ]);
  if (code !== 0) throw new Error(`caviar train exited ${code}; see ${bed.logDir}/train.log`);
  return lastJsonLine<Figure>(stdout, (v) => v.examples_per_s !== undefined);
}

/** DDP with one process on each worker host, rank 0's address as MASTER_ADDR. */
async function ddpRun(bed: MultiHostBed, python: string, run: number): Promise<Figure> {
  const master = bed.host('w0').address;
  const logs = ['w0', 'w1'].map((_, rank) => `ddp-${run}-${rank}.log`);
  const children = ['w0', 'w1'].map((host, rank) =>
    bed.spawn(
      host,
      logs[rank],
      python,
      [DDP_SCRIPT, mnistDigitsDir(), '2', String(EPOCHS), String(BATCH), 'mlp'],
      { RANK: String(rank), MASTER_ADDR: master, MASTER_PORT: '29533', GLOO_SOCKET_IFNAME: 'eth0' },
    ),
  );
  const codes = await Promise.all(children.map((c) => bed.exited(c)));
  if (codes.some((c) => c !== 0))
    throw new Error(`DDP exited ${codes.join(', ')}; see ${bed.logDir}`);
  const text = fs.readFileSync(path.join(bed.logDir, logs[0]), 'utf8');
  return lastJsonLine<Figure>(text, (v) => v.peer !== undefined);
}

export async function benchMultihost(o: SectionOptions, report: BenchReport): Promise<void> {
  const unavailable = testbedUnavailable();
  if (unavailable)
    return report.log(`multihost: skipped, the test bed cannot run here: ${unavailable}`);
  const python = fs.existsSync(DDP_SCRIPT) ? torchPython() : undefined;
  if (!python)
    report.log(`multihost: no DDP peer (${DDP_SCRIPT} and a python3 with torch are needed)`);
  for (const rate of LINKS)
    for (const layout of SHARD_LAYOUTS) {
      const link = rate ?? 'unlimited';
      const where = `${link}, ${layout.shards.length} shard host(s)`;
      try {
        await benchBed(o, report, python, rate, layout);
      } catch (err) {
        report.fail(`multihost ${where}: ${messageOf(err)}`);
      }
    }
}

/** One bed (links at `rate`, shards as `layout` places them): caviar's settings and DDP, alternated. */
async function benchBed(
  o: SectionOptions,
  report: BenchReport,
  python: string | undefined,
  rate: string | undefined,
  layout: (typeof SHARD_LAYOUTS)[number],
): Promise<void> {
  const link = rate ?? 'unlimited';
  const shardHosts = layout.shards.length;
  using bed = new MultiHostBed(
    'bench',
    hosts(rate),
    testOutputDir(`bench-multihost-${link}-${shardHosts}`),
  ).start();
  const { coordinator } = await bed.startCaviar({
    control: 'ctl',
    shards: layout.shards,
    workers: ['w0', 'w1'],
    backend: BACKEND,
  });
  const ddp: Figure[] = [];
  const caviar = new Map<string, Array<Figure & { wire_bytes_per_batch: number }>>();
  // Alternated run by run, so both sides see the same moments of a noisy machine.
  for (let run = 0; run < o.runs; run++) {
    for (const mode of MODES)
      for (const compression of layout.compressions) {
        const key = `${mode} ${compression}`;
        const before = linkBytes(bed, layout.shards);
        const figure = await caviarRun(bed, coordinator, mode, compression);
        const bytes = linkBytes(bed, layout.shards) - before;
        const perBatch = round(bytes / Math.max(1, figure.batches_applied), 0);
        caviar.set(key, [
          ...(caviar.get(key) ?? []),
          { ...figure, wire_bytes_per_batch: perBatch },
        ]);
        report.log(
          `multihost ${link} ${shardHosts} shard host(s) ${key}: ${figure.examples_per_s} examples/s, ${perBatch} bytes a batch on the shards' links`,
        );
      }
    if (python) {
      const d = await ddpRun(bed, python, run);
      ddp.push(d);
      report.log(`multihost ${link} ddp: ${d.examples_per_s} examples/s`);
    }
  }
  const ddpRates = ddp.map((d) => d.examples_per_s);
  const ddpMedian = ddp.length > 0 ? spreadOf(ddpRates).median : undefined;
  for (const [key, runs] of caviar) {
    const [modeKey, compression] = key.split(' ');
    const [mode, overlap] = modeKey.split('+');
    const [compress, compressPull = 'none'] = compression.split('/');
    const spread = spreadOf(runs.map((r) => r.examples_per_s));
    report.emit({
      bench: 'multihost',
      link,
      worker_hosts: 2,
      shard_hosts: shardHosts,
      mode,
      overlap: overlap !== undefined,
      compress,
      compress_pull: compressPull,
      backend: runs.at(-1)?.backend ?? BACKEND,
      epochs: EPOCHS,
      runs: runs.length,
      examples_per_s: round(spread.median, 1),
      examples_per_s_min: round(spread.min, 1),
      examples_per_s_max: round(spread.max, 1),
      wire_bytes_per_batch: spreadOf(runs.map((r) => r.wire_bytes_per_batch)).median,
      val_accuracy: runs.at(-1)?.val_accuracy ?? null,
      ...(ddpMedian
        ? {
            ddp_examples_per_s: round(ddpMedian, 1),
            ratio_vs_ddp: round(spread.median / ddpMedian, 3),
          }
        : {}),
    });
  }
  if (ddpMedian)
    report.emit({
      bench: 'multihost',
      link,
      peer: 'pytorch-ddp',
      worker_hosts: 2,
      shard_hosts: shardHosts,
      epochs: EPOCHS,
      runs: ddp.length,
      examples_per_s: round(ddpMedian, 1),
      examples_per_s_min: round(Math.min(...ddpRates), 1),
      examples_per_s_max: round(Math.max(...ddpRates), 1),
      val_accuracy: ddp.at(-1)?.val_accuracy ?? null,
    });
}
