import { runYielding } from '../core/yielding';
import type { EvalData, EvalResult, TrialModel } from './compute-backend';

/** Examples a worker evaluates between chances for its event loop to run. */
const EXAMPLES_PER_STEP = 64;

function* evaluateInSteps(
  model: TrialModel,
  data: EvalData,
  count: number,
): Generator<void, EvalResult> {
  const size = data.features.length / Math.max(1, data.count);
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < count; start += EXAMPLES_PER_STEP) {
    const n = Math.min(EXAMPLES_PER_STEP, count - start);
    const part = model.evaluate(
      data.features.subarray(start * size, (start + n) * size),
      data.labels.subarray(start, start + n),
      n,
    );
    lossSum += part.loss * part.examples;
    correct += Math.round(part.accuracy * part.examples);
    yield;
  }
  return count === 0
    ? { loss: 0, accuracy: 0, examples: 0 }
    : { loss: lossSum / count, accuracy: correct / count, examples: count };
}

/**
 * The model's loss and accuracy on the first `count` examples of `data`, a few dozen examples
 * at a time with the event loop free between them: a large model's evaluation of a few thousand
 * examples would otherwise hold the worker's main thread for tens of seconds.
 */
export function evaluateYielding(
  model: TrialModel,
  data: EvalData,
  count = data.count,
): Promise<EvalResult> {
  return runYielding(evaluateInSteps(model, data, count));
}
