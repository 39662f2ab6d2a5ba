import { permutation, seededUniform } from './seeded-random';

/**
 * The mini-batches of one epoch: the training indices shuffled with the trial's seed and the
 * epoch number, cut into batches of `batchSize` (the last one may be smaller). Every process that
 * needs an epoch's order computes the same one, so only batch numbers and indices travel.
 */
export function epochBatches(
  count: number,
  batchSize: number,
  seed: number,
  epoch: number,
): Uint32Array[] {
  const order = permutation(count, seededUniform(`batches:${seed}:${epoch}`));
  const batches: Uint32Array[] = [];
  for (let i = 0; i < count; i += batchSize)
    batches.push(order.subarray(i, Math.min(count, i + batchSize)));
  return batches;
}

export function batchesPerEpoch(count: number, batchSize: number): number {
  return Math.ceil(count / batchSize);
}
