/**
 * The sweep section of `npm run bench`: caviar against panda. On one local cluster
 * (`caviar up`), the same 16 trials as a sweep 4 at a time (caviar) and one after another
 * (panda), in alternating order for max(2, --runs) rounds: medians of the wall times, their
 * ratio, the best accuracies. An untimed 8-trial sweep runs first: a fresh cluster spends its
 * first seconds warming up (V8 compiling the hot paths of grpc-js, protobufjs and tfjs).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CAVIAR_BIN } from '../helpers/repo';
import { failure, lastJsonLine, runChild, upCluster } from './children';
import { messageOf, type BenchReport, type SectionOptions } from './report';
import { round, spreadOf } from './stats';

/** The 16 MNIST trials of the sweep bench: the same seed gives the same trials at any parallelism. */
function sweepSpec(parallel: number, name = `bench-parallel-${parallel}`, trials = 16): string {
  return [
    `name: ${name}`,
    'dataset: { source: mnist }',
    'model: { type: mlp, hidden: [128] }',
    'train: { optimizer: adam, lr: 1.0e-3, batch: 128, epochs: 2, mode: async, seed: 1 }',
    'search:',
    '  lr: { log_uniform: [1.0e-4, 1.0e-2] }',
    '  hidden: { choice: [[64], [128], [256]] }',
    '  batch: { choice: [64, 128] }',
    `budget: { trials: ${trials}, parallel: ${parallel}, seed: 11 }`,
    'objective: { maximize: val_accuracy }',
  ].join('\n');
}

export async function benchSweep(o: SectionOptions, report: BenchReport): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-bench-sweep-'));
  const up = await upCluster(2, 2);
  try {
    const result: Record<string, unknown> = {
      bench: 'sweep',
      trials: 16,
      workers: 2,
      shards: 2,
      epochs: 2,
    };
    const sweep = async (parallel: number, name: string, trials = 16) => {
      const file = path.join(dir, `${name}.yaml`);
      fs.writeFileSync(file, sweepSpec(parallel, name, trials));
      const r = await runChild(
        process.execPath,
        [CAVIAR_BIN, 'sweep', file, '--coordinator', up.coordinator, '--json'],
        o.timeoutS,
      );
      if (r.code !== 0) throw new Error(failure(r, `sweep ${name}`));
      return lastJsonLine<{ seconds: number; best: { val_accuracy: number } | null }>(
        r.stdout,
        (v) => 'sweep' in v,
      );
    };
    const seconds: Record<number, number[]> = { 1: [], 4: [] };
    const best: Record<number, number[]> = { 1: [], 4: [] };
    try {
      report.log('sweep: warm-up, 8 trials');
      await sweep(4, 'bench-warm-up', 8);
      // The order alternates (4 then 1, 1 then 4, ...): the cluster keeps getting faster for a
      // while, and whichever sweep ran first would pay for it.
      const rounds = Math.max(2, o.runs);
      for (let k = 0; k < rounds; k++) {
        for (const parallel of k % 2 === 0 ? [4, 1] : [1, 4]) {
          report.log(`sweep: 16 trials, parallel ${parallel} (round ${k + 1}/${rounds})`);
          const s = await sweep(parallel, `bench-parallel-${parallel}-${k}`);
          seconds[parallel].push(s.seconds);
          best[parallel].push(s.best?.val_accuracy ?? NaN);
        }
      }
    } catch (err) {
      report.fail(messageOf(err));
      return;
    }
    const parallel = spreadOf(seconds[4], 2);
    const sequential = spreadOf(seconds[1], 2);
    Object.assign(result, {
      rounds: seconds[4].length,
      parallel: 4,
      parallel_seconds: parallel.median,
      parallel_seconds_runs: parallel.runs,
      sequential_seconds: sequential.median,
      sequential_seconds_runs: sequential.runs,
      best_val_accuracy: Math.max(...best[4]),
      sequential_best_val_accuracy: Math.max(...best[1]),
      speedup: round(sequential.median / parallel.median, 2),
    });
    report.emit(result);
  } finally {
    up.stop();
  }
}
