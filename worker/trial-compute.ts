import type { Dataset } from '../core/datasets/dataset';
import type { ModelSpec } from '../core/model-spec';
import type {
  ComputeBackend,
  EvalData,
  EvalResult,
  GradientResult,
  TrialModel,
} from './compute-backend';
import { evaluateYielding } from './evaluate-yielding';
import { predictLatencyP95 } from './predict-latency';

/**
 * One trial's model as the worker loop drives it. Every call is asynchronous so that the model
 * may live on a thread of its own (worker/compute-thread.ts) and the worker's main thread stays
 * free for its shard calls, its metrics and the coordinator while a batch computes.
 */
export interface TrialCompute {
  /**
   * True when the model reads parameter values and examples from another thread: the arrays
   * handed to it are then best allocated with `allocateFor`, which shares them instead of copying.
   */
  readonly threaded: boolean;
  /** Copies every parameter's values in; the arrays may be written again once it resolves. */
  setParameters(values: ReadonlyMap<string, Float32Array>): Promise<void>;
  /**
   * TrialModel.gradients; the gradient arrays are the caller's to keep. With `values`, the
   * parameters are set from them first, as setParameters would (one call instead of two).
   */
  gradients(
    features: Float32Array,
    labels: Int32Array,
    count: number,
    noiseKey: string,
    values?: ReadonlyMap<string, Float32Array>,
  ): Promise<GradientResult>;
  /** Loss and accuracy over the first `count` examples of `data`. */
  evaluate(data: EvalData, count: number): Promise<EvalResult>;
  /** The 95th-percentile time to predict one example of `data` (worker/predict-latency.ts). */
  predictLatencyP95(data: EvalData): Promise<number>;
  dispose(): void;
}

/** Where a worker's trial models come from: its compute backend, on its main thread or another. */
export interface ComputeService {
  /** The backend's name, as logs, metrics and registrations report it. */
  readonly name: string;
  createModel(
    spec: ModelSpec,
    inputShape: readonly number[],
    numClasses: number,
    frozen: ReadonlySet<string>,
  ): Promise<TrialCompute>;
  close(): Promise<void>;
}

type Reader = Pick<TrialCompute, 'threaded'>;

/** Zeroed memory the model reads without a copy: shared memory where it is threaded. */
function bufferFor(model: Reader, bytes: number): ArrayBuffer | SharedArrayBuffer {
  return model.threaded ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
}

/** A zeroed Float32Array of `length` for parameter values or examples the model reads. */
export function allocateFor(model: Reader, length: number): Float32Array {
  return new Float32Array(bufferFor(model, length * Float32Array.BYTES_PER_ELEMENT));
}

/** A zeroed Int32Array of `length` for labels the model reads. */
export function allocateLabelsFor(model: Reader, length: number): Int32Array {
  return new Int32Array(bufferFor(model, length * Int32Array.BYTES_PER_ELEMENT));
}

/** Shared copies of data sets, kept as long as the data set is (loadSplits caches splits). */
const sharedCopies = new WeakMap<Dataset, Dataset>();

/** A data set whose examples a threaded model reads in place, copied once if need be. */
export function datasetFor(model: Reader, data: Dataset): Dataset {
  if (!model.threaded || data.features.buffer instanceof SharedArrayBuffer) return data;
  let copy = sharedCopies.get(data);
  if (!copy) {
    const features = allocateFor(model, data.features.length);
    features.set(data.features);
    const labels = allocateLabelsFor(model, data.labels.length);
    labels.set(data.labels);
    copy = { ...data, features, labels };
    sharedCopies.set(data, copy);
  }
  return copy;
}

/** A TrialModel run on the calling thread, its evaluation cut into steps that yield. */
export function inlineCompute(model: TrialModel): TrialCompute {
  return {
    threaded: false,
    // async, so that a model that throws rejects as a threaded one does.
    setParameters: async (values) => model.setParameters(values),
    gradients: async (features, labels, count, noiseKey, values) => {
      if (values) model.setParameters(values);
      return model.gradients(features, labels, count, noiseKey);
    },
    evaluate: (data, count) => evaluateYielding(model, data, count),
    predictLatencyP95: async (data) => predictLatencyP95(model, data),
    dispose: () => model.dispose(),
  };
}

/** The backend's models on the calling thread: the synthetic backend, and tfjs-node's. */
export function inlineService(backend: ComputeBackend): ComputeService {
  return {
    name: backend.name,
    createModel: async (spec, inputShape, numClasses, frozen) =>
      inlineCompute(backend.createModel(spec, inputShape, numClasses, frozen)),
    close: async () => undefined,
  };
}
