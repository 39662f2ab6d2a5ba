import * as tf from '@tensorflow/tfjs-core';
import { loadBlasAddon } from '../../core/native/addon';
import { PooledCpuBackend } from './array-pool';
import { lightKernels } from './light-kernels';
import { layerGraphKernels } from './layer-graph-kernels';
import { blasKernels } from './kernels';
import { poolKernels } from './pool-kernels';
import { registerDenseOp } from './dense-op';
import { registerConvOp } from './conv-op';
import { batchNormKernels, registerBatchNormOp } from './batch-norm-op';

/** The tfjs backend name of caviar's blas backend. */
export const BLAS_BACKEND = 'blas';

export interface BlasBackendInfo {
  /** The CPU kernels OpenBLAS picked, e.g. "Haswell". */
  core: string;
  threads: number;
}

/**
 * Registers tfjs backend `blas`: a MathBackendCPU that reuses its own kernels' output arrays
 * (array-pool.ts), whose heavy kernels (kernels.ts) run on OpenBLAS, whose hottest light ones
 * are native loops (light-kernels.ts, pool-kernels.ts), which has one-kernel dense, conv and
 * BatchNorm layer ops (dense-op.ts, conv-op.ts, batch-norm-op.ts), and every other kernel of
 * tfjs's cpu backend. Throws, registering nothing, when the addon does not load. Again later, it
 * only sets the thread count.
 *
 * @param threads BLAS threads of this process. Defaults to 1: workers are one process per core.
 */
export function registerBlasBackend(threads = 1): BlasBackendInfo {
  const addon = loadBlasAddon(threads);
  if (!tf.findBackendFactory(BLAS_BACKEND)) {
    // Priority 0, below cpu's 1: a process only computes on blas when it asks for it.
    tf.registerBackend(BLAS_BACKEND, () => new PooledCpuBackend(), 0);
    const own = {
      ...lightKernels(addon),
      ...layerGraphKernels(),
      ...poolKernels(addon),
      ...batchNormKernels(addon),
      ...blasKernels(addon),
    };
    for (const kernel of tf.getKernelsForBackend('cpu')) {
      if (kernel.kernelName in own) continue;
      // Reshape and Identity share their input's data, counted: no array of theirs escapes.
      const shares = kernel.kernelName === tf.Reshape || kernel.kernelName === tf.Identity;
      const kernelFunc: tf.KernelFunc = shares
        ? kernel.kernelFunc
        : (args) => {
            (args.backend as PooledCpuBackend).escapeInputs(args.inputs);
            return kernel.kernelFunc(args);
          };
      tf.registerKernel({ ...kernel, backendName: BLAS_BACKEND, kernelFunc });
    }
    for (const [kernelName, kernelFunc] of Object.entries(own)) {
      tf.registerKernel({ kernelName, backendName: BLAS_BACKEND, kernelFunc });
    }
    registerDenseOp(BLAS_BACKEND, addon);
    registerConvOp(BLAS_BACKEND, addon);
    registerBatchNormOp(BLAS_BACKEND, addon);
  }
  const { core } = addon.config();
  return { core, threads: addon.threads() };
}
