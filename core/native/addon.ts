import * as fs from 'node:fs';
import * as path from 'node:path';

/** Set to a path to load the addon from there instead; a missing path hides it (tests). */
export const NATIVE_ADDON_ENV = 'CAVIAR_NATIVE_ADDON';

const BUILT = path.join('build', 'Release', 'caviar_native.node');

/** The functions of core/native/blas.cc, for the workers' blas backend. Row-major float32. */
export interface BlasFunctions {
  /**
   * c[i] = op(a[i]) · op(b[i]) (+ bias per row) (ReLU) for i < batch; c[i] is m×n at i·m·n, and
   * a stride of 0 broadcasts that operand over the batch.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batch: number,
    strideA: number,
    strideB: number,
    bias: Float32Array | null,
    relu: boolean,
  ): void;
  /** y = conv(x, filter) (+ bias) (ReLU), NHWC; dims as convDims() lays them out. */
  conv2d(
    x: Float32Array,
    filter: Float32Array,
    y: Float32Array,
    dims: Int32Array,
    bias: Float32Array | null,
    relu: boolean,
  ): void;
  conv2dBackpropInput(
    dy: Float32Array,
    filter: Float32Array,
    dx: Float32Array,
    dims: Int32Array,
  ): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, dims: Int32Array): void;
  /** Sets OpenBLAS's thread count; returns the count now in effect. */
  setThreads(threads: number): number;
  threads(): number;
  /** OpenBLAS's build configuration and the CPU kernels it picked, for logs. */
  config(): { config: string; core: string; threads: number };
  /**
   * out[r·cols + c] = a[r·aRow + c·aCol] op b[r·bRow + c·bCol] for r < rows, c < cols; op 0 add,
   * 1 sub, 2 mul, 3 div (core/native/elementwise.cc).
   */
  binary(
    op: number,
    rows: number,
    cols: number,
    a: Float32Array,
    aRow: number,
    aCol: number,
    b: Float32Array,
    bRow: number,
    bCol: number,
    out: Float32Array,
  ): void;
  /** out = max(x, 0), NaN kept. */
  relu(x: Float32Array, out: Float32Array): void;
  /** out = 1 where x > 0, else alpha, NaN kept. */
  step(x: Float32Array, alpha: number, out: Float32Array): void;
  /** Sums x (reduced × kept when leading, kept × reduced otherwise) into out's kept values. */
  sum(x: Float32Array, reduced: number, kept: number, leading: boolean, out: Float32Array): void;
  /** NHWC pooling (core/native/pool.cc), dims as convDims() lays them out; outputs overwritten. */
  avgPool(x: Float32Array, y: Float32Array, dims: Int32Array): void;
  avgPoolGrad(dy: Float32Array, dx: Float32Array, dims: Int32Array): void;
  maxPool(x: Float32Array, y: Float32Array, dims: Int32Array): void;
  maxPoolGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, dims: Int32Array): void;
  /** BatchNorm over the last axis of C channels (core/native/batch-norm.cc); outputs overwritten. */
  batchNormTrain(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    channels: number,
    epsilon: number,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
  ): void;
  batchNormInfer(
    x: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    channels: number,
    epsilon: number,
    y: Float32Array,
  ): void;
  batchNormGrad(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    channels: number,
    epsilon: number,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
  ): void;
}

/** The functions of core/native/optimizer.cc, for the shards: bit-identical to the JS loops. */
export interface OptimizerFunctions {
  /** One Adam step in place; stepSize = lr/(1-β1^t), inverseCorrection2 = 1/(1-β2^t). */
  adam(
    params: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    stepSize: number,
    inverseCorrection2: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    l2: number,
  ): void;
  /** The index of the first NaN or ±Infinity in values[start, start + count), or -1. */
  firstNonFinite(values: Float32Array, start: number, count: number): number;
}

export type NativeAddon = BlasFunctions & OptimizerFunctions;

/**
 * Where the addon may be: beside this file when run from source (tsx), or in the source tree
 * when this file runs from dist/core/native/ (node-gyp builds in the source tree, tsc does not
 * copy it).
 */
export function addonCandidates(): string[] {
  const override = process.env[NATIVE_ADDON_ENV];
  if (override) return [path.resolve(override)];
  return [
    path.join(__dirname, BUILT),
    path.join(__dirname, '..', '..', '..', 'core', 'native', BUILT),
  ];
}

let loaded: { file: string; addon: NativeAddon } | undefined;

/**
 * The addon at the first candidate that exists, required once, or an Error saying why it cannot
 * load (not built, or OpenBLAS missing at run time). OpenBLAS sizes its thread pool when it
 * loads, from OPENBLAS_NUM_THREADS, which this sets to `threads` unless the user already has.
 */
export function loadNativeAddon(threads = 1): NativeAddon {
  const candidates = addonCandidates();
  const file = candidates.find((f) => fs.existsSync(f));
  if (!file) {
    throw new Error(
      `the native addon is not built (looked for ${candidates.join(', ')}); install a C++ compiler and libopenblas-dev, then run \`npm run build:native\``,
    );
  }
  if (loaded?.file === file) return loaded.addon;
  process.env.OPENBLAS_NUM_THREADS ??= String(threads);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native addon loads with require
    loaded = { file, addon: require(file) as NativeAddon };
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new Error(`the native addon at ${file} failed to load: ${why}`, { cause: err });
  }
  return loaded.addon;
}

/**
 * Loads the addon and sets its BLAS thread count, or throws an Error saying why it cannot.
 * $CAVIAR_NATIVE_ADDON, when set, is the only place looked.
 *
 * @param threads BLAS threads of this process. Defaults to 1: workers are one process per core.
 */
export function loadBlasAddon(threads = 1): BlasFunctions {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`BLAS threads must be a whole number >= 1, got ${threads}`);
  }
  const addon = loadNativeAddon(threads);
  addon.setThreads(threads);
  return addon;
}

/** Whether the addon loads here (its thread count untouched); for tests and benchmarks. */
export function nativeAddonAvailable(): boolean {
  try {
    loadNativeAddon(1);
    return true;
  } catch {
    return false;
  }
}
