/**
 * The multihost section of `npm run bench`: caviar and PyTorch DDP on the multi-host test bed
 * (test/multihost/testbed.ts), back to back on the same hosts and links: 2 worker hosts, 1 shard
 * host, the coordinator on its own, links unlimited and at 1 Gbit/s; caviar for compression
 * none, bf16 and topk:0.01 in sync and async mode, DDP (one process per worker host, gloo)
 * between them. Needs root; where the bed cannot be built it says why and emits nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, testOutputDir } from '../helpers/repo';
import { MultiHostBed, testbedUnavailable, type HostSpec } from '../multihost/testbed';
import { lastJsonLine, mnistDigitsDir, torchPython } from './children';
import { messageOf, type BenchReport, type SectionOptions } from './report';
import { round, spreadOf } from './stats';

const DDP_SCRIPT = path.resolve(REPO_ROOT, '..', 'shared', 'bench', 'peer_torch_ddp.py');
const EPOCHS = 3;
const BATCH = 128;
const LINKS = [undefined, '1gbit'] as const;
const COMPRESSIONS = ['none', 'bf16', 'topk:0.01'] as const;
const MODES = ['sync', 'async'] as const;

interface Figure {
  examples_per_s: number;
  val_accuracy: number | null;
}

function hosts(rate: string | undefined): HostSpec[] {
  return ['ctl', 'ps0', 'w0', 'w1', 'cli'].map((name) => ({ name, ...(rate ? { rate } : {}) }));
}

async function caviarRun(
  bed: MultiHostBed,
  coordinator: string,
  mode: string,
  compress: string,
): Promise<Figure> {
  const { code, stdout } = await bed.caviarOutput('cli', 'train.log', [
    ...['train', '--coordinator', coordinator, '--dataset', 'mnist', '--model', 'mlp:256'],
    ...['--batch', String(BATCH), '--epochs', String(EPOCHS), '--mode', mode],
    ...['--compress', compress, '--json'],
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
  for (const rate of LINKS) {
    const link = rate ?? 'unlimited';
    using bed = new MultiHostBed(
      'bench',
      hosts(rate),
      testOutputDir(`bench-multihost-${link}`),
    ).start();
    try {
      const { coordinator } = await bed.startCaviar({
        control: 'ctl',
        shards: ['ps0'],
        workers: ['w0', 'w1'],
      });
      const ddp: number[] = [];
      const ddpAccuracy: number[] = [];
      const caviar = new Map<string, Figure[]>();
      // Alternated run by run, so both sides see the same moments of a noisy machine.
      for (let run = 0; run < o.runs; run++) {
        for (const mode of MODES)
          for (const compress of COMPRESSIONS) {
            const key = `${mode} ${compress}`;
            caviar.set(key, [
              ...(caviar.get(key) ?? []),
              await caviarRun(bed, coordinator, mode, compress),
            ]);
            report.log(
              `multihost ${link} ${key}: ${caviar.get(key)!.at(-1)!.examples_per_s} examples/s`,
            );
          }
        if (python) {
          const d = await ddpRun(bed, python, run);
          ddp.push(d.examples_per_s);
          ddpAccuracy.push(d.val_accuracy ?? 0);
          report.log(`multihost ${link} ddp: ${d.examples_per_s} examples/s`);
        }
      }
      const ddpMedian = ddp.length > 0 ? spreadOf(ddp).median : undefined;
      for (const [key, runs] of caviar) {
        const [mode, compress] = key.split(' ');
        const rates = runs.map((r) => r.examples_per_s);
        const spread = spreadOf(rates);
        report.emit({
          bench: 'multihost',
          link,
          worker_hosts: 2,
          shard_hosts: 1,
          mode,
          compress,
          epochs: EPOCHS,
          runs: runs.length,
          examples_per_s: round(spread.median, 1),
          examples_per_s_min: round(spread.min, 1),
          examples_per_s_max: round(spread.max, 1),
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
          epochs: EPOCHS,
          runs: ddp.length,
          examples_per_s: round(ddpMedian, 1),
          examples_per_s_min: round(Math.min(...ddp), 1),
          examples_per_s_max: round(Math.max(...ddp), 1),
          val_accuracy: ddpAccuracy.at(-1) ?? null,
        });
    } catch (err) {
      report.fail(`multihost ${link}: ${messageOf(err)}`);
    }
  }
}
