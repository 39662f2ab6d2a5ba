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
