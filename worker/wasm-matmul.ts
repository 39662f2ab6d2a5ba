import * as tf from '@tensorflow/tfjs-core';

type Attrs = Record<string, unknown>;

/**
 * tfjs-backend-wasm 4.22's BatchMatMul is fast only without transposes: with transposeA or
 * transposeB set it is several times slower than an explicit Transpose then a plain product
 * (README, Benchmarks). Every backward pass of a dense layer multiplies by a transposed operand,
 * so this wrapper transposes explicitly (on wasm) and runs wasm's own kernel with the flags off.
 * The forward product has no transposes and goes straight through.
 */
function withExplicitTransposes(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    if (!transposeA && !transposeB) return original.kernelFunc(args);
    const backend = args.backend as tf.KernelBackend;
    const temps: tf.TensorInfo[] = [];
    const swapLast2 = (x: tf.TensorInfo): tf.TensorInfo => {
      const rank = x.shape.length;
      const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
      const transpose = tf.getKernel(tf.Transpose, 'wasm') as tf.KernelConfig;
      const t = transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
      temps.push(t);
      return t;
    };
    const inputs = { ...args.inputs } as Record<string, tf.TensorInfo>;
    if (transposeA) inputs.a = swapLast2(inputs.a);
    if (transposeB) inputs.b = swapLast2(inputs.b);
    const attrs: Attrs = { ...args.attrs, transposeA: false, transposeB: false };
    const out = original.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap });
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  };
}

const wrapped = new WeakSet<tf.KernelFunc>();

/**
 * Replaces wasm's BatchMatMul and _FusedMatMul with explicit-transpose wrappers, keeping their
 * setup functions (wasm kernels bind their WebAssembly exports there). Call before the wasm
 * backend initializes; again is a no-op.
 */
export function registerWasmMatMulKernels(): void {
  for (const kernelName of [tf.BatchMatMul, tf._FusedMatMul]) {
    const original = tf.getKernel(kernelName, 'wasm');
    if (!original || wrapped.has(original.kernelFunc)) continue;
    const kernelFunc = withExplicitTransposes(original);
    wrapped.add(kernelFunc);
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ ...original, kernelFunc });
  }
}
