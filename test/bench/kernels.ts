/**
 * Single-process gradient throughput per compute backend (issue 7): `gradients()` alone, for the
 * 784-256-10 MLP and LeNet-5 on MNIST mini-batches of 128, on cpu, wasm and blas (blas where its
 * addon is built; a row says why not otherwise). All backends run in this one process, one after
 * the other (tfjs switches its active backend per model call).
 *
 *   node --import tsx test/bench/kernels.ts     # or dist/test/bench/kernels.js; prints JSON lines
 */
import { performance } from 'node:perf_hooks';
import { loadSplits } from '../../core/datasets';
import { initialParameters, modelParams, parseModelSpec } from '../../core/model-spec';
import { nativeAddonAvailable } from '../../core/native/addon';
import { selectBackend } from '../../worker/select-backend';
import { round } from './stats';

export interface KernelBenchOptions {
  /** Backends to measure. Defaults to cpu, wasm, blas. */
  backends?: Array<'cpu' | 'wasm' | 'blas'>;
  /** Model specs. Defaults to mlp:256 and lenet5. */
  models?: string[];
  /** Examples per mini-batch. Defaults to 128. */
  batch?: number;
  /** Timed seconds per (backend, model), after the warm-up. Defaults to 2. */
  seconds?: number;
  /** Untimed steps first (tfjs kernel setup, allocator growth), within a second. Defaults to 3. */
  warmup?: number;
  /** BLAS threads for blas. Defaults to 1, a worker's default. */
  threads?: number;
}

export interface KernelBenchResult {
  bench: 'kernels';
  backend: string;
  model: string;
  batch: number;
  threads: number;
  steps: number;
  seconds: number;
  ms_per_step: number;
  examples_per_s: number;
}

export interface KernelBenchSkipped {
  bench: 'kernels';
  backend: string;
  model: string;
  skipped: string;
}

/** Distinct mini-batches cycled through, so caches see more than one batch. */
const DISTINCT_BATCHES = 8;

export async function benchKernels(
  options: KernelBenchOptions = {},
): Promise<Array<KernelBenchResult | KernelBenchSkipped>> {
  const {
    backends = ['cpu', 'wasm', 'blas'],
    models = ['mlp:256', 'lenet5'],
    batch = 128,
    seconds = 2,
    warmup = 3,
    threads = 1,
  } = options;
  const { train } = await loadSplits('mnist');
  const size = train.features.length / train.count;
  let seed = 12345;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % train.count;
  };
  const batches = Array.from({ length: DISTINCT_BATCHES }, () => {
    const features = new Float32Array(batch * size);
    const labels = new Int32Array(batch);
    for (let i = 0; i < batch; i++) {
      const k = next();
      features.set(train.features.subarray(k * size, (k + 1) * size), i * size);
      labels[i] = train.labels[k];
    }
    return { features, labels };
  });

  const rows: Array<KernelBenchResult | KernelBenchSkipped> = [];
  for (const choice of backends) {
    if (choice === 'blas' && !nativeAddonAvailable()) {
      for (const model of models) {
        rows.push({ bench: 'kernels', backend: choice, model, skipped: 'blas addon not built' });
      }
      continue;
    }
    const backend = await selectBackend(choice, undefined, { threads });
    for (const model of models) {
      const spec = parseModelSpec(model);
      const trial = backend.createModel(spec, train.featureShape, train.numClasses);
      trial.setParameters(
        initialParameters(modelParams(spec, train.featureShape, train.numClasses), 1),
      );
      const step = (i: number): void => {
        const b = batches[i % DISTINCT_BATCHES];
        trial.gradients(b.features, b.labels, batch);
      };
      // A slow backend (cpu's LeNet-5 takes seconds a step) warms up for a second at most.
      const warmStart = performance.now();
      for (let i = 0; i < warmup && (i === 0 || performance.now() - warmStart < 1000); i++) step(i);
      let steps = 0;
      const start = performance.now();
      let elapsed = 0;
      while (elapsed < seconds * 1000 || steps < 2) {
        step(steps++);
        elapsed = performance.now() - start;
      }
      trial.dispose();
      rows.push({
        bench: 'kernels',
        backend: backend.name,
        model,
        batch,
        threads: choice === 'blas' ? threads : 1,
        steps,
        seconds: round(elapsed / 1000, 3),
        ms_per_step: round(elapsed / steps, 3),
        examples_per_s: round((steps * batch * 1000) / elapsed, 0),
      });
    }
  }
  return rows;
}

if (require.main === module && !process.env.NODE_TEST_CONTEXT) {
  benchKernels().then(
    (rows) => rows.forEach((row) => process.stdout.write(`${JSON.stringify(row)}\n`)),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
