import { InvalidArgumentError } from '../core/errors';

/** Refuses a batch whose arrays are shorter than `count` examples of `exampleSize` features. */
export function checkBatchSize(
  features: Float32Array,
  labels: Int32Array,
  count: number,
  exampleSize: number,
): void {
  if (
    !Number.isInteger(count) ||
    count < 0 ||
    features.length < count * exampleSize ||
    labels.length < count
  ) {
    throw new InvalidArgumentError(
      `a batch of ${count} examples needs ${count * exampleSize} feature values and ${count} labels; got ${features.length} and ${labels.length}`,
    );
  }
}
