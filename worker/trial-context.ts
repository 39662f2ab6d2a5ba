import type { TrialSpec__Output } from '../proto/gen/caviar/v1/TrialSpec';
import type { DatasetSplits, Dataset } from '../core/datasets/dataset';
import { loadSplits } from '../core/datasets';
import { modelParams, parseModelSpec, type ParamInfo } from '../core/model-spec';
import { elementCount, placeTensors, slicesOnShard, type Slice } from '../core/placement';
import {
  allocateFor,
  allocateLabelsFor,
  datasetFor,
  type ComputeService,
  type TrialCompute,
} from './trial-compute';
import { parseAugment, type Augmentation } from '../core/augment-spec';
import { augmentBatch } from './augment';
import { frozenTensors, parseFreeze, trainedParams } from '../core/transfer';
import { pullCodecOf, topKRatioOf } from '../core/compression';
import { clipByGlobalNorm, trainedGradients } from './clip';
import { TopKErrorFeedback } from './error-feedback';

/** Writes the values of a trial's frozen layers (the coordinator keeps them) into `into`. */
export type FrozenFetch = (trial: string, into: ReadonlyMap<string, Float32Array>) => Promise<void>;

/** What a worker keeps per trial between tasks: data, model, parameter buffers, placement. */
export interface TrialContext {
  trial: string;
  splits: DatasetSplits;
  model: TrialCompute;
  params: ParamInfo[];
  /** Full parameter tensors, refilled by every pull; a frozen layer's are fetched once. */
  values: Map<string, Float32Array>;
  /** Slices per shard index, for the shard list the coordinator gave. */
  shardSlices: Slice[][];
  shards: string[];
  /** Reused buffers for one mini-batch's features and labels. */
  batchFeatures: Float32Array;
  batchLabels: Int32Array;
  /** The trial's augmentation of training batches; validation and test are never augmented. */
  augment: Augmentation;
  /** The codec training pulls and push-pull answers ask the values in (--compress-pull). */
  pullCodec: string;
  /** A top-k trial's residuals (--compress topk:RATIO): what its pushes have left out so far. */
  errorFeedback?: TopKErrorFeedback;
  /**
   * The inference-latency measure, taken at this worker's first evaluation of the trial: it
   * depends on the model's shape and the machine, not on the weights, and takes 40 single
   * predictions, about as long as the evaluation itself.
   */
  predictMsP95?: number;
}

export async function createTrialContext(
  trial: string,
  spec: TrialSpec__Output,
  shards: string[],
  compute: ComputeService,
  fetchFrozen: FrozenFetch,
): Promise<TrialContext> {
  const loaded = await loadSplits(spec.dataset, { labelColumn: spec.label_column || undefined });
  const { featureShape, numClasses } = loaded.train;
  const modelSpec = parseModelSpec(spec.model);
  const params = modelParams(modelSpec, featureShape, numClasses);
  // Placed as the coordinator places them: the shards hold only the tensors that train.
  const frozen = frozenTensors(params, parseFreeze(spec.freeze));
  const trained = trainedParams(params, frozen);
  const slices = placeTensors(trained, shards.length);
  const topK = topKRatioOf(spec.compress);
  const featureSize = elementCount(featureShape);
  const model = await compute.createModel(modelSpec, featureShape, numClasses, frozen);
  // The splits a worker computes on, where its model reads them (on a compute thread, shared).
  const splits = {
    ...loaded,
    train: datasetFor(model, loaded.train),
    trainDev: datasetFor(model, loaded.trainDev),
    validation: datasetFor(model, loaded.validation),
  };
  const values = new Map(params.map((p) => [p.name, allocateFor(model, elementCount(p.shape))]));
  if (frozen.size > 0)
    await fetchFrozen(trial, new Map([...frozen].map((name) => [name, values.get(name)!])));
  return {
    trial,
    splits,
    model,
    params,
    values,
    shardSlices: shards.map((_, s) => slicesOnShard(slices, s)),
    shards,
    // Shared with a compute thread: one batch computes at a time, so refilling them is safe.
    batchFeatures: allocateFor(model, spec.batch * featureSize),
    batchLabels: allocateLabelsFor(model, spec.batch),
    augment: parseAugment(spec.augment ?? ''),
    pullCodec: pullCodecOf(spec.compress_pull),
    ...(topK === undefined ? {} : { errorFeedback: new TopKErrorFeedback(topK, trained) }),
  };
}

/** A batch's gradient as it is pushed: clipped to the trial's global norm, then cut to its top k. */
export function finishGradient(
  context: TrialContext,
  grads: ReadonlyMap<string, Float32Array>,
  clipNorm: number,
): void {
  if (clipNorm > 0) clipByGlobalNorm(trainedGradients(context.params, grads), clipNorm);
  context.errorFeedback?.sparsify(grads);
}

/**
 * A training batch: the examples at `indices` in the context's batch buffers, augmented as the
 * trial asks with draws keyed by `noiseKey` (the batch's identity), so a rerun matches.
 */
export function trainingBatch(
  context: TrialContext,
  indices: readonly number[],
  noiseKey: string,
): { features: Float32Array; labels: Int32Array } {
  const batch = gatherBatch(context, context.splits.train, indices);
  const { featureShape } = context.splits.train;
  augmentBatch(batch.features, indices.length, featureShape, context.augment, noiseKey);
  return batch;
}

/** Copies the examples at `indices` of `data` into the context's batch buffers; returns their views. */
function gatherBatch(
  context: TrialContext,
  data: Dataset,
  indices: readonly number[],
): { features: Float32Array; labels: Int32Array } {
  const size = elementCount(data.featureShape);
  for (let i = 0; i < indices.length; i++) {
    const at = indices[i];
    context.batchFeatures.set(data.features.subarray(at * size, (at + 1) * size), i * size);
    context.batchLabels[i] = data.labels[at];
  }
  return {
    features: context.batchFeatures.subarray(0, indices.length * size),
    labels: context.batchLabels.subarray(0, indices.length),
  };
}
