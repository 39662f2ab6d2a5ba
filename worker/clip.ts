import type { ParamInfo } from '../core/model-spec';

/** Scales every gradient down so their global L2 norm is at most `maxNorm`; returns the norm before. */
export function clipByGlobalNorm(grads: Iterable<Float32Array>, maxNorm: number): number {
  const arrays = [...grads];
  let sumSquares = 0;
  for (const g of arrays) for (let i = 0; i < g.length; i++) sumSquares += g[i] * g[i];
  const norm = Math.sqrt(sumSquares);
  if (maxNorm > 0 && norm > maxNorm) {
    const scale = maxNorm / norm;
    for (const g of arrays) for (let i = 0; i < g.length; i++) g[i] *= scale;
  }
  return norm;
}

/** The gradients of trained tensors: BatchNorm's moving statistics carry batch statistics instead. */
export function* trainedGradients(
  params: readonly ParamInfo[],
  grads: ReadonlyMap<string, Float32Array>,
): Generator<Float32Array> {
  for (const p of params) {
    const g = grads.get(p.name);
    if (g && p.movingAverage === undefined) yield g;
  }
}
