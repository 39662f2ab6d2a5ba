import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';

type Attrs = Record<string, unknown>;

/** Runs another wasm kernel directly, as tfjs backends compose their own kernels. */
function run(
  kernelName: string,
  inputs: tf.NamedTensorInfoMap,
  backend: tf.KernelBackend,
  attrs: Attrs,
): tf.TensorInfo {
  const kernel = tf.getKernel(kernelName, 'wasm');
  if (!kernel) throw new Error(`the wasm backend has no ${kernelName} kernel`);
  return kernel.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
}

/**
 * The filter gradient of a 2-D convolution on wasm, which tfjs-backend-wasm 4.22 lacks (so
 * lenet5 could not train there). dW[i,j,c,o] = Σ_{n,h,w} xPadded[n, h·s+i, w·s+j, c] · dy[n,h,w,o]
 * is itself a convolution: x with batch and channels swapped, filtered by dy dilated by the
 * stride. That runs on wasm's XNNPACK Conv2D, so no data leaves the backend.
 */
const conv2DBackpropFilter: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const wasm = backend as tf.KernelBackend;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
  if (info.dataFormat !== 'channelsLast')
    throw new Error('wasm Conv2DBackpropFilter supports NHWC only');
  const { top, bottom, left, right } = info.padInfo;
  const temps: tf.TensorInfo[] = [];
  const step = (t: tf.TensorInfo): tf.TensorInfo => (temps.push(t), t);
  const xT = step(run(tf.Transpose, { x }, wasm, { perm: [3, 1, 2, 0] })); // [Cin, H, W, N]
  const dyT = step(run(tf.Transpose, { x: dy }, wasm, { perm: [1, 2, 0, 3] })); // [OH, OW, N, Cout]
  let w = step(
    run(tf.Conv2D, { x: xT, filter: dyT }, wasm, {
      strides: [1, 1],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dilations: [info.strideHeight, info.strideWidth],
      dataFormat: 'NHWC',
    }),
  ); // [Cin, H', W', Cout], H' >= kh: rows past the last stride position take no part
  if (w.shape[1] !== info.filterHeight || w.shape[2] !== info.filterWidth) {
    const size = [info.inChannels, info.filterHeight, info.filterWidth, info.outChannels];
    w = step(run(tf.Slice, { x: w }, wasm, { begin: [0, 0, 0, 0], size }));
  }
  const out = run(tf.Transpose, { x: w }, wasm, { perm: [1, 2, 0, 3] }); // [kh, kw, Cin, Cout]
  for (const t of temps) wasm.disposeData(t.dataId);
  return out;
};

/** Adds the missing wasm kernels caviar's models need for training; a no-op once tfjs has them. */
export function registerWasmTrainingKernels(): void {
  if (tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')) return;
  tf.registerKernel({
    kernelName: tf.Conv2DBackpropFilter,
    backendName: 'wasm',
    kernelFunc: conv2DBackpropFilter,
  });
}
