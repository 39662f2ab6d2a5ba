import type { backend_util } from '@tensorflow/tfjs-core';

/**
 * The 15 numbers the addon's window walks (core/native/window-geometry.h: convolutions and
 * poolings) take, from tfjs's own geometry.
 */
export function convDims(info: backend_util.Conv2DInfo): Int32Array {
  return Int32Array.from([
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.outChannels,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.dilationHeight,
    info.dilationWidth,
    info.padInfo.top,
    info.padInfo.left,
  ]);
}
