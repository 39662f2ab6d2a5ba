import { elementCount } from '../placement';
import { permutation, seededUniform } from '../seeded-random';
import type { Dataset, DatasetSplits } from './dataset';

/** Up to this many examples, validation and test get 20% each (60/20/20). */
export const SMALL_DATASET = 10_000;
/** From this many examples on, validation and test get 1% each (98/1/1). */
export const LARGE_DATASET = 1_000_000;
const SMALL_SHARE = 0.2;
const LARGE_SHARE = 0.01;

/** Every process shuffles with this seed, so all of them hold the same split. */
export const SPLIT_SEED = 0;

/**
 * The share of examples each of validation and test gets: 20% up to 10,000 examples, 1% from
 * 1,000,000 on, and in between linear in log(count), so the share shrinks smoothly with no jump.
 */
export function heldOutShare(count: number): number {
  if (count <= SMALL_DATASET) return SMALL_SHARE;
  if (count >= LARGE_DATASET) return LARGE_SHARE;
  const t = Math.log(count / SMALL_DATASET) / Math.log(LARGE_DATASET / SMALL_DATASET);
  return SMALL_SHARE + t * (LARGE_SHARE - SMALL_SHARE);
}

export interface SplitSizes {
  train: number;
  trainDev: number;
  validation: number;
  test: number;
}

/** Train-dev takes this share of the training portion, and never more than validation has. */
const TRAIN_DEV_SHARE = 0.1;

export function splitSizes(count: number): SplitSizes {
  const held = Math.round(count * heldOutShare(count));
  const trainPortion = count - 2 * held;
  const trainDev = Math.min(held, Math.round(trainPortion * TRAIN_DEV_SHARE));
  return { train: trainPortion - trainDev, trainDev, validation: held, test: held };
}

/** Per-feature mean and standard deviation of a data set's examples. */
export interface FeatureStats {
  mean: Float64Array;
  std: Float64Array;
}

/** A standard deviation below this is a constant feature (MNIST's blank border pixels): left unscaled. */
const MIN_STD = 1e-6;

export function featureStats(data: Dataset): FeatureStats {
  const size = elementCount(data.featureShape);
  const mean = new Float64Array(size);
  const sq = new Float64Array(size);
  for (let e = 0; e < data.count; e++) {
    const row = e * size;
    for (let f = 0; f < size; f++) mean[f] += data.features[row + f];
  }
  for (let f = 0; f < size; f++) mean[f] /= Math.max(1, data.count);
  // Two passes (mean first) keep the variance accurate for features far from zero.
  for (let e = 0; e < data.count; e++) {
    const row = e * size;
    for (let f = 0; f < size; f++) {
      const d = data.features[row + f] - mean[f];
      sq[f] += d * d;
    }
  }
  const std = sq.map((s) => {
    const sd = Math.sqrt(s / Math.max(1, data.count));
    return sd < MIN_STD ? 1 : sd;
  });
  return { mean, std };
}

/** (x - mean) / std per feature, in place. */
export function normalizeInPlace(data: Dataset, stats: FeatureStats): void {
  const size = stats.mean.length;
  for (let e = 0; e < data.count; e++) {
    const row = e * size;
    for (let f = 0; f < size; f++) {
      data.features[row + f] = (data.features[row + f] - stats.mean[f]) / stats.std[f];
    }
  }
}

/** The examples at `order[start..start+count)`, copied into a new data set. */
function subset(data: Dataset, order: Uint32Array, start: number, count: number): Dataset {
  const size = elementCount(data.featureShape);
  const features = new Float32Array(count * size);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const src = order[start + i];
    features.set(data.features.subarray(src * size, (src + 1) * size), i * size);
    labels[i] = data.labels[src];
  }
  // Example names stay with the data set as loaded (reports look them up by index there).
  const { numClasses, classNames } = data;
  return { features, labels, count, featureShape: [...data.featureShape], numClasses, classNames };
}

/**
 * Train / validation / test by the rule of thumb of DESIGN.md, after a shuffle with a fixed
 * seed; all three normalized with the train split's statistics.
 */
export function splitDataset(data: Dataset): DatasetSplits {
  const sizes = splitSizes(data.count);
  const order = permutation(data.count, seededUniform(`split:${SPLIT_SEED}`));
  const train = subset(data, order, 0, sizes.train);
  const trainDev = subset(data, order, sizes.train, sizes.trainDev);
  const heldStart = sizes.train + sizes.trainDev;
  const validation = subset(data, order, heldStart, sizes.validation);
  const test = subset(data, order, heldStart + sizes.validation, sizes.test);
  const stats = featureStats(train);
  for (const part of [train, trainDev, validation, test]) normalizeInPlace(part, stats);
  return { train, trainDev, validation, test };
}
