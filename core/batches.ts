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

/** (epoch, batch) as one number: both are uint32 on the wire, so the key stays below 2^53. */
export function batchKey(epoch: number, batch: number): number {
  return epoch * 2 ** 32 + batch;
}

export function batchOfKey(key: number): { epoch: number; batch: number } {
  return { epoch: Math.floor(key / 2 ** 32), batch: key % 2 ** 32 };
}

export function batchesPerEpoch(count: number, batchSize: number): number {
  return Math.ceil(count / batchSize);
}
