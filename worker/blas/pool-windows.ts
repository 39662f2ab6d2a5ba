import type * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';

/** The NHWC pooling windows the blas backend's average and max pooling kernels walk. */

/** NHWC pooling geometry where these kernels apply (no dilation), else undefined. */
export function poolInfo(
  x: tf.TensorInfo,
  attrs: Pick<tf.MaxPoolAttrs, 'filterSize' | 'strides' | 'pad' | 'dimRoundingMode'>,
): backend_util.Conv2DInfo | undefined {
  if (x.dtype !== 'float32' || x.shape.length !== 4) return undefined;
  return backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}

/** Calls visit(outputPixel, inputPixel) for each in-bounds input pixel of each output window. */
export function forEachWindowPixel(
  info: backend_util.Conv2DInfo,
  visit: (o: number, i: number, count: number) => void,
) {
  const { batchSize, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { filterHeight, filterWidth } = info;
  for (let n = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const h0 = oh * strideHeight - info.padInfo.top;
      const hMin = Math.max(0, h0);
      const hMax = Math.min(inHeight, h0 + filterHeight);
      for (let ow = 0; ow < outWidth; ow++) {
        const w0 = ow * strideWidth - info.padInfo.left;
        const wMin = Math.max(0, w0);
        const wMax = Math.min(inWidth, w0 + filterWidth);
        const o = (n * outHeight + oh) * outWidth + ow;
        const count = (hMax - hMin) * (wMax - wMin);
        for (let h = hMin; h < hMax; h++) {
          for (let w = wMin; w < wMax; w++) visit(o, (n * inHeight + h) * inWidth + w, count);
        }
      }
    }
  }
}
