import type { ModelSpec } from '../core/model-spec';
import type { Dataset } from '../core/datasets/dataset';

export { BACKEND_CHOICES, type BackendChoice } from '../core/backend-choice';

/** Gradients of the mean loss over one mini-batch, keyed by parameter name (core/model-spec names). */
export interface GradientResult {
  loss: number;
  grads: Map<string, Float32Array>;
}

/** The examples an evaluation reads. */
export type EvalData = Pick<Dataset, 'features' | 'labels' | 'count'>;

export interface EvalResult {
  loss: number;
  accuracy: number;
  examples: number;
}

/** One trial's model on one worker. */
export interface TrialModel {
  /** Replaces every parameter's values; the map holds each parameter's full flat values. */
  setParameters(params: ReadonlyMap<string, Float32Array>): void;
  /**
   * Loss and gradients for `count` examples (features row-major, labels as class indices).
   * `noiseKey` seeds the batch's dropout masks: the same key gives the same masks anywhere.
   * BatchNorm's moving statistics get the batch's mean and variance in a gradient's place.
   */
  gradients(
    features: Float32Array,
    labels: Int32Array,
    count: number,
    noiseKey?: string,
  ): GradientResult;
  evaluate(features: Float32Array, labels: Int32Array, count: number): EvalResult;
  dispose(): void;
}

/** A way to compute gradients: a tfjs backend, or `synthetic` (right shapes, no compute). */
export interface ComputeBackend {
  /** The name reported in logs, metrics and summaries, e.g. "wasm", "tensorflow", "synthetic". */
  readonly name: string;
  /**
   * `frozen` names tensors that keep the values they are set to: their gradients are neither
   * computed nor returned.
   */
  createModel(
    spec: ModelSpec,
    inputShape: readonly number[],
    numClasses: number,
    frozen?: ReadonlySet<string>,
  ): TrialModel;
}
