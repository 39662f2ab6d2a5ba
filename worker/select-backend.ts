import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { Logger } from '../core/log';
import { BLAS_BACKEND, registerBlasBackend } from './blas/backend';
import type { BackendChoice, ComputeBackend } from './compute-backend';
import { SyntheticComputeBackend } from './synthetic-compute';
import { TfjsComputeBackend } from './tfjs-compute';
import { registerWasmTrainingKernels } from './wasm-conv-grad';
import { registerWasmMatMulKernels } from './wasm-matmul';

const GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const NODE_PACKAGE = '@tensorflow/tfjs-node';
/** The tfjs backend name both native packages register. */
const NATIVE_BACKEND = 'tensorflow';

/** Whether either tfjs-node package is installed (`auto` would then try it first). */
export function tensorflowInstalled(): boolean {
  return [GPU_PACKAGE, NODE_PACKAGE].some((pkg) => {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      return false;
    }
  });
}

/** A backend that could not be used, and why, in words for a log line or an error. */
class Unavailable extends Error {}

function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

/** Loads an optional native package; a missing one is an Unavailable, never console output. */
function loadOptional(pkg: string): void {
  // libtensorflow prints CPU-feature and CUDA banners on load unless told otherwise.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional packages load lazily, inside try
    require(pkg);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const missing = code === 'MODULE_NOT_FOUND' && reason(err).includes(`'${pkg}'`);
    throw new Unavailable(
      missing ? `${pkg} is not installed` : `${pkg} failed to load: ${reason(err)}`,
    );
  }
  if (!tf.findBackendFactory(NATIVE_BACKEND)) {
    // It registered on its own copy of @tensorflow/tfjs-core, which caviar's models never see.
    throw new Unavailable(`${pkg} loaded but did not register with caviar's @tensorflow/tfjs-core`);
  }
}

async function activate(tfjsBackend: string): Promise<void> {
  let ok = false;
  try {
    ok = await tf.setBackend(tfjsBackend);
  } catch (err) {
    throw new Unavailable(`tfjs backend ${tfjsBackend} failed to initialize: ${reason(err)}`);
  }
  if (!ok) throw new Unavailable(`tfjs backend ${tfjsBackend} failed to initialize`);
}

function usesGpu(): boolean | undefined {
  // tfjs-node's NodeJSKernelBackend exposes whether libtensorflow found a CUDA device.
  const flag = (tf.backend() as unknown as { isUsingGpuDevice?: unknown }).isUsingGpuDevice;
  return typeof flag === 'boolean' ? flag : undefined;
}

async function gpu(): Promise<ComputeBackend> {
  loadOptional(GPU_PACKAGE);
  await activate(NATIVE_BACKEND);
  if (usesGpu() === false) throw new Unavailable(`${GPU_PACKAGE} loaded but sees no GPU`);
  return new TfjsComputeBackend(NATIVE_BACKEND, 'tensorflow-gpu');
}

async function node(): Promise<ComputeBackend> {
  if (!tf.findBackendFactory(NATIVE_BACKEND)) loadOptional(NODE_PACKAGE);
  await activate(NATIVE_BACKEND);
  return new TfjsComputeBackend(NATIVE_BACKEND, NATIVE_BACKEND);
}

/** What selectBackend needs besides the choice. */
export interface SelectOptions {
  /** BLAS threads of the blas backend (OpenBLAS). Defaults to 1: workers are one process per core. */
  threads?: number;
}

async function blas(options: SelectOptions): Promise<ComputeBackend> {
  try {
    registerBlasBackend(options.threads ?? 1);
  } catch (err) {
    if (err instanceof RangeError) throw err; // a bad --threads is the caller's mistake, not ours
    throw new Unavailable(reason(err));
  }
  await activate(BLAS_BACKEND);
  return new TfjsComputeBackend(BLAS_BACKEND);
}

async function wasm(): Promise<ComputeBackend> {
  // A worker is one process per core: more XNNPACK threads would fight the other workers.
  // It only takes effect before the backend's first initialization.
  setThreadsCount(1);
  registerWasmTrainingKernels();
  registerWasmMatMulKernels();
  await activate('wasm');
  return new TfjsComputeBackend('wasm');
}

async function cpu(): Promise<ComputeBackend> {
  await activate('cpu');
  return new TfjsComputeBackend('cpu');
}

/** In the order `auto` tries them (DESIGN.md): fastest first. */
const EXPLICIT: Record<
  Exclude<BackendChoice, 'auto' | 'synthetic'>,
  (options: SelectOptions) => Promise<ComputeBackend>
> = {
  gpu,
  node,
  blas,
  wasm,
  cpu,
};

/**
 * Tries gpu, node, blas, wasm, cpu in order. A gpu package without a GPU still serves as `node`.
 * The native tensorflow packages are rarely installed, so their absence is a debug line; blas is
 * caviar's own CPU path, so its absence is one warning with what to do about it.
 */
async function auto(options: SelectOptions, log?: Logger): Promise<ComputeBackend> {
  for (const [choice, make] of Object.entries(EXPLICIT)) {
    try {
      return await make(options);
    } catch (err) {
      if (!(err instanceof Unavailable)) throw err;
      if (choice === 'blas') {
        log?.warn(
          { backend: choice, reason: err.message },
          'blas compute backend unavailable, falling back',
        );
      } else {
        log?.debug({ backend: choice, reason: err.message }, 'compute backend unavailable');
      }
    }
  }
  throw new Error('no compute backend could be initialized, not even cpu');
}

/**
 * The compute backend for `--backend`: `auto` takes the fastest that works here; an explicit
 * choice that cannot load rejects with an Error naming the backend and why.
 */
export async function selectBackend(
  choice: BackendChoice,
  log?: Logger,
  options: SelectOptions = {},
): Promise<ComputeBackend> {
  let backend: ComputeBackend;
  if (choice === 'synthetic') backend = new SyntheticComputeBackend();
  else if (choice === 'auto') backend = await auto(options, log);
  else {
    try {
      backend = await EXPLICIT[choice](options);
    } catch (err) {
      throw new Error(`compute backend "${choice}" is unavailable: ${reason(err)}`, { cause: err });
    }
  }
  const threads = backend.name === BLAS_BACKEND ? { threads: options.threads ?? 1 } : {};
  log?.info({ backend: backend.name, requested: choice, ...threads }, 'compute backend selected');
  return backend;
}
