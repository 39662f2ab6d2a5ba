/**
 * The convnets section of `npm run bench`: LeNet-5 and the small BatchNorm ResNet of
 * examples/models/resnet-mnist.json, trained by caviar (`caviar train --local`, 1 and 2 workers,
 * 1 shard, async, with and without --overlap) and by torch on the same layer graph (test/bench/peer_torch_graph.py: plain
 * torch for 1, DistributedDataParallel for 2), run by run alternately so both see the same
 * machine; plus the ratio of the medians.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TrainSummary } from '../../client/summary';
import { lenet5Graph } from '../../core/model-graph/presets';
import { splitSizes } from '../../core/datasets/split';
import { CAVIAR_BIN, REPO_ROOT } from '../helpers/repo';
import { failure, lastJsonLine, mnistDigitsDir, runChild, torchPython } from './children';
import type { BenchReport, SectionOptions } from './report';
import { medianIndex, round, spreadOf } from './stats';

export const GRAPH_PEER = path.join(REPO_ROOT, 'test', 'bench', 'peer_torch_graph.py');
/**
 * What a caviar trial evaluates after each epoch of the mnist package's 10,000 digits (its
 * validation split, its train-dev split and as many training examples), per example it trains
 * on. The torch peer evaluates as many per example in its timed span, so both sides'
 * examples/s cover the same work.
 */
const EVAL_FRACTION = ((s) => (s.validation + 2 * s.trainDev) / s.train)(splitSizes(10_000));
const BATCH = 128;
/** Epochs of each run: long enough that start-up and evaluation weigh little. */
const EPOCHS = 4;

interface ConvnetBenchOptions {
  runs: number;
  epochs: number;
  timeoutS: number;
  /** A python that imports torch; without one the torch side is skipped. */
  python?: string;
  emit: (line: Record<string, unknown>) => void;
  log: (message: string) => void;
}

interface Side {
  rates: number[];
  /** torch's: examples/s of its training steps alone, its evaluation's time left out. */
  trainOnly: number[];
  accuracy: number[];
  computeFraction: number[];
  errors: string[];
}

/** The models: what caviar's --model takes, and the graph file the torch peer builds. */
export function convnetModels(dir: string): Array<{ name: string; caviar: string; graph: string }> {
  const lenet = path.join(dir, 'lenet5.json');
  // The preset's own graph, so torch trains exactly the layers caviar does (average pooling).
  fs.writeFileSync(lenet, JSON.stringify(lenet5Graph()));
  const resnet = path.join(REPO_ROOT, 'examples', 'models', 'resnet-mnist.json');
  return [
    { name: 'lenet5', caviar: 'lenet5', graph: lenet },
    { name: 'resnet-mnist', caviar: resnet, graph: resnet },
  ];
}

async function caviarOnce(
  model: string,
  workers: number,
  overlap: boolean,
  o: ConvnetBenchOptions,
  side: Side,
) {
  const args = [
    CAVIAR_BIN,
    'train',
    '--local',
    '--workers',
    String(workers),
    '--shards',
    '1',
    '--dataset',
    'mnist',
    '--model',
    model,
    '--batch',
    String(BATCH),
    '--epochs',
    String(o.epochs),
    '--mode',
    'async',
    ...(overlap ? ['--overlap'] : []),
    '--json',
  ];
  const r = await runChild(process.execPath, args, o.timeoutS);
  try {
    const s = lastJsonLine<TrainSummary>(r.stdout, (v) => 'trial' in v);
    if (r.code !== 0 || s.status !== 'completed') throw new Error(`trial ${s.status} ${s.error}`);
    side.rates.push(s.examples_per_s);
    side.accuracy.push(s.val_accuracy ?? NaN);
    side.computeFraction.push(s.seconds > 0 ? s.time.compute / (workers * s.seconds) : NaN);
    o.log(`  caviar${overlap ? ' --overlap' : ''} ${s.examples_per_s} examples/s`);
  } catch (err) {
    side.errors.push(err instanceof SyntaxError ? failure(r, 'caviar train') : String(err));
  }
}

async function torchOnce(graph: string, workers: number, o: ConvnetBenchOptions, side: Side) {
  const args = [
    GRAPH_PEER,
    mnistDigitsDir(),
    graph,
    String(workers),
    String(o.epochs),
    String(BATCH),
    String(EVAL_FRACTION),
  ];
  const r = await runChild(o.python!, args, o.timeoutS);
  try {
    if (r.code !== 0) throw new Error(failure(r, 'peer_torch_graph.py'));
    const p = lastJsonLine<{
      examples_per_s: number;
      train_only_examples_per_s: number;
      val_accuracy: number;
    }>(r.stdout, (v) => v.peer !== undefined);
    side.rates.push(p.examples_per_s);
    side.trainOnly.push(p.train_only_examples_per_s);
    side.accuracy.push(p.val_accuracy);
    o.log(`  torch ${p.examples_per_s} examples/s (${p.train_only_examples_per_s} training alone)`);
  } catch (err) {
    side.errors.push((err as Error).message);
  }
}

function summarize(side: Side) {
  if (side.rates.length === 0) return { examples_per_s: null, errors: side.errors };
  const spread = spreadOf(side.rates);
  const at = medianIndex(side.rates);
  return {
    examples_per_s: spread.median,
    examples_per_s_runs: spread.runs,
    spread: spread.spread,
    val_accuracy: side.accuracy[at],
    ...(side.trainOnly.length
      ? { train_only_examples_per_s: spreadOf(side.trainOnly).median }
      : {}),
    ...(side.computeFraction.length
      ? { compute_fraction: round(side.computeFraction[at], 3) }
      : {}),
    ...(side.errors.length ? { errors: side.errors } : {}),
  };
}

/** The section as `npm run bench` runs it: EPOCHS a run, torch's side where python3 imports it. */
export function benchConvnets(o: SectionOptions, report: BenchReport): Promise<void> {
  return convnetComparison({
    runs: o.runs,
    epochs: EPOCHS,
    timeoutS: o.timeoutS,
    python: torchPython(),
    emit: report.emit,
    log: report.log,
  });
}

async function convnetComparison(o: ConvnetBenchOptions): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-convnets-'));
  try {
    for (const model of convnetModels(dir)) {
      for (const workers of [1, 2]) {
        const side = (): Side => ({
          rates: [],
          trainOnly: [],
          accuracy: [],
          computeFraction: [],
          errors: [],
        });
        const [caviar, overlapped, torch] = [side(), side(), side()];
        for (let i = 0; i < o.runs; i++) {
          o.log(`convnets: ${model.name}, ${workers} worker(s), run ${i + 1}/${o.runs}`);
          await caviarOnce(model.caviar, workers, false, o, caviar);
          await caviarOnce(model.caviar, workers, true, o, overlapped);
          if (o.python) await torchOnce(model.graph, workers, o, torch);
        }
        const c = summarize(caviar);
        const v = summarize(overlapped);
        const t = o.python ? summarize(torch) : { skipped: 'no python3 that imports torch' };
        const ratioOf = (rate: number | null) =>
          rate !== null && 'examples_per_s' in t && t.examples_per_s
            ? round(rate / t.examples_per_s, 3)
            : null;
        o.emit({
          bench: 'convnets',
          model: model.name,
          workers,
          batch: BATCH,
          epochs: o.epochs,
          runs: o.runs,
          caviar: { shards: 1, mode: 'async', ...c },
          caviar_overlap: { shards: 1, mode: 'async', overlap: true, ...v },
          torch: { system: workers > 1 ? 'ddp' : 'single', ...t },
          ratio: ratioOf(c.examples_per_s),
          ratio_overlap: ratioOf(v.examples_per_s),
        });
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
