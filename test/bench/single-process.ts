/**
 * The compute limit of one process: builds the model on one compute backend (the worker's own
 * selectBackend) and times `gradients()` on MNIST mini-batches, nothing else. run.ts starts it as
 * a child process per backend so each measurement gets a clean tfjs (one global backend per
 * process). Prints one JSON line on stdout.
 *
 *   node dist/test/bench/single-process.js --backend wasm --model mlp:256 --batch 128 --seconds 2
 */
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError } from 'commander';
import { BACKEND_CHOICES, type BackendChoice } from '../../core/backend-choice';
import { loadSplits } from '../../core/datasets';
import { parseModelSpec } from '../../core/model-spec';
import { selectBackend } from '../../worker/select-backend';
import { round } from './stats';

export interface SingleProcessResult {
  bench: 'single_process';
  /** The backend that ran (what `auto` chose, for `requested: "auto"`). */
  backend: string;
  requested: string;
  model: string;
  batch: number;
  steps: number;
  seconds: number;
  ms_per_step: number;
  examples_per_s: number;
}

interface Options {
  backend: BackendChoice;
  model: string;
  batch: number;
  seconds: number;
  warmup: number;
}

const positive = (v: string): number => {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError(`${v} is not a positive number`);
  return n;
};

/** Distinct mini-batches cycled through, so caches see more than one batch. */
const DISTINCT_BATCHES = 16;

export async function measure(o: Options): Promise<SingleProcessResult> {
  const backend = await selectBackend(o.backend);
  const splits = await loadSplits('mnist');
  const train = splits.train;
  const size = train.features.length / train.count;
  const model = backend.createModel(parseModelSpec(o.model), train.featureShape, train.numClasses);
  // Batches gathered up front (the worker's gather is outside gradients() too), seeded order.
  let s = 12345;
  const next = (): number => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s % train.count;
  };
  const batches = Array.from({ length: DISTINCT_BATCHES }, () => {
    const features = new Float32Array(o.batch * size);
    const labels = new Int32Array(o.batch);
    for (let i = 0; i < o.batch; i++) {
      const k = next();
      features.set(train.features.subarray(k * size, (k + 1) * size), i * size);
      labels[i] = train.labels[k];
    }
    return { features, labels };
  });
  const step = (i: number): void => {
    const b = batches[i % DISTINCT_BATCHES];
    model.gradients(b.features, b.labels, o.batch);
  };
  for (let i = 0; i < o.warmup; i++) step(i);
  let steps = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < o.seconds * 1000) {
    step(steps++);
    elapsed = performance.now() - start;
  }
  model.dispose();
  const seconds = elapsed / 1000;
  return {
    bench: 'single_process',
    backend: backend.name,
    requested: o.backend,
    model: o.model,
    batch: o.batch,
    steps,
    seconds: round(seconds, 3),
    ms_per_step: round(elapsed / steps, 2),
    examples_per_s: round((steps * o.batch) / seconds, 1),
  };
}

async function main(): Promise<void> {
  const program = new Command('single-process')
    .option('--backend <name>', BACKEND_CHOICES.join('|'), 'auto')
    .option('--model <spec>', 'model spec', 'mlp:256')
    .option('--batch <n>', 'examples per mini-batch', positive, 128)
    .option('--seconds <s>', 'timed seconds after warm-up', positive, 2)
    .option('--warmup <n>', 'untimed steps first', positive, 5)
    .parse();
  const o = program.opts<Options>();
  if (!BACKEND_CHOICES.includes(o.backend)) program.error(`unknown backend ${o.backend}`);
  process.stdout.write(JSON.stringify(await measure(o)) + '\n');
}

// `node --test dist/test/` runs every file under dist/test; a bench must not start there.
if (require.main === module && !process.env.NODE_TEST_CONTEXT) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
