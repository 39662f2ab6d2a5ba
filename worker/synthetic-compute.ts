import { InvalidArgumentError } from '../core/errors';
import { modelParams, type ModelSpec } from '../core/model-spec';
import { elementCount } from '../core/placement';
import type { ComputeBackend, EvalResult, GradientResult, TrialModel } from './compute-backend';
import { checkBatchSize } from './batch-check';

/** The loss a synthetic model reports before its first step (ln 10, chance on 10 classes). */
const START_LOSS = Math.log(10);
/** Gradient values are uniform in ±this: small enough that Adam or SGD keep parameters finite. */
const GRAD_SCALE = 1e-3;

/** xorshift32: a few integer operations per value, so filling costs next to nothing. */
function fill(values: Float32Array, seed: number): void {
  let s = seed | 0 || 1;
  for (let i = 0; i < values.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    values[i] = (s / 0x80000000) * GRAD_SCALE;
  }
}

/**
 * Gradients of the right shapes without computing them, to measure the system path (pull,
 * push, apply) alone. The gradient arrays are preallocated and refilled on every call, so a
 * result is valid only until the model's next gradients() call.
 */
class SyntheticTrialModel implements TrialModel {
  private readonly grads = new Map<string, Float32Array>();
  private readonly exampleSize: number;
  private steps = 0;

  constructor(
    spec: ModelSpec,
    inputShape: readonly number[],
    numClasses: number,
    frozen: ReadonlySet<string>,
  ) {
    for (const p of modelParams(spec, inputShape, numClasses))
      if (!frozen.has(p.name)) this.grads.set(p.name, new Float32Array(elementCount(p.shape)));
    this.exampleSize = elementCount(inputShape);
  }

  setParameters(params: ReadonlyMap<string, Float32Array>): void {
    for (const [name, grad] of this.grads) {
      const values = params.get(name);
      if (!values || values.length !== grad.length) {
        throw new InvalidArgumentError(
          `parameter ${name} needs ${grad.length} values, got ${values ? values.length : 'none'}`,
        );
      }
    }
  }

  gradients(features: Float32Array, labels: Int32Array, count: number): GradientResult {
    this.checkBatch(features, labels, count);
    this.steps++;
    let k = 0;
    for (const grad of this.grads.values()) fill(grad, this.steps * 7919 + k++);
    return { loss: this.loss(), grads: this.grads };
  }

  evaluate(features: Float32Array, labels: Int32Array, count: number): EvalResult {
    this.checkBatch(features, labels, count);
    const accuracy = count === 0 ? 0 : 1 - 0.9 * (this.loss() / START_LOSS);
    return { loss: count === 0 ? 0 : this.loss(), accuracy, examples: count };
  }

  dispose(): void {
    this.grads.clear();
  }

  /** Falls slowly with the step count, like a training curve, and stays positive. */
  private loss(): number {
    return START_LOSS / (1 + this.steps / 10_000);
  }

  private checkBatch(features: Float32Array, labels: Int32Array, count: number): void {
    checkBatchSize(features, labels, count, this.exampleSize);
  }
}

/** `--backend synthetic`: no tensors, no tfjs; see SyntheticTrialModel. */
export class SyntheticComputeBackend implements ComputeBackend {
  readonly name = 'synthetic';

  createModel(
    spec: ModelSpec,
    inputShape: readonly number[],
    numClasses: number,
    frozen: ReadonlySet<string> = new Set(),
  ): TrialModel {
    return new SyntheticTrialModel(spec, inputShape, numClasses, frozen);
  }
}
