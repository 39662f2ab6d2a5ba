import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { CoordinatorClient } from '../../core/coordinator-client';
import { datasetSource, loadSplits, splitDataset, type Dataset } from '../../core/datasets';
import { buildLayersModel, setModelParameters } from '../../core/layers-model';
import { modelParams, parseModelSpec } from '../../core/model-spec';
import { elementCount } from '../../core/placement';
import type { TrialStatus__Output } from '../../proto/gen/caviar/v1/TrialStatus';

/** The winner's outputs on the validation split, with what displaying its examples needs. */
export interface ValidationPredictions {
  /** `count × classes` logits, row-major. */
  logits: Float32Array;
  labels: Int32Array;
  count: number;
  classes: number;
  classNames: string[];
  featureShape: number[];
  /**
   * The validation examples as loaded, before normalization (MNIST pixels in [0, 1]), in the
   * split's order; undefined when they could not be matched to the split.
   */
  rawFeatures: Float32Array | undefined;
  /** Where each validation example came from (a file), where the data set names them. */
  exampleNames: string[] | undefined;
}

/** Examples per forward pass: bounds the memory of the activations, not the result. */
const PREDICT_BATCH = 512;

function predictLogits(
  status: TrialStatus__Output,
  params: ReadonlyMap<string, Float32Array>,
  data: Dataset,
): Float32Array {
  const spec = parseModelSpec(status.spec?.model ?? '');
  const model = buildLayersModel(spec, status.input_shape, status.num_classes);
  try {
    setModelParameters(model, params);
    const size = elementCount(data.featureShape);
    const out = new Float32Array(data.count * status.num_classes);
    for (let start = 0; start < data.count; start += PREDICT_BATCH) {
      const n = Math.min(PREDICT_BATCH, data.count - start);
      const logits = tf.tidy(() => {
        const x = tf.tensor(
          data.features.subarray(start * size, (start + n) * size),
          [n, ...data.featureShape],
          'float32',
        );
        return model.predict(x) as tf.Tensor;
      });
      out.set(logits.dataSync(), start * status.num_classes);
      logits.dispose();
    }
    return out;
  } finally {
    model.dispose();
  }
}

/**
 * The validation examples before normalization, and their names where the source has them. The split is re-derived by splitDataset itself
 * on a stand-in data set whose labels are the example indices (labels are copied, never
 * normalized), so this follows split.ts's order whatever it is; the real labels must then agree
 * with the normalized split's, or the images would show the wrong examples.
 */
async function rawValidation(
  dataset: string,
  labelColumn: string | undefined,
  validation: Dataset,
): Promise<{ features: Float32Array; names: string[] | undefined } | undefined> {
  const raw = await datasetSource(dataset, { labelColumn }).load();
  const indices = splitDataset({
    ...raw,
    features: new Float32Array(raw.count),
    featureShape: [1],
    labels: Int32Array.from({ length: raw.count }, (_, i) => i),
  }).validation.labels;
  if (indices.length !== validation.count) return undefined;
  if (indices.some((src, i) => raw.labels[src] !== validation.labels[i])) return undefined;
  const size = elementCount(raw.featureShape);
  const out = new Float32Array(indices.length * size);
  indices.forEach((src, i) =>
    out.set(raw.features.subarray(src * size, (src + 1) * size), i * size),
  );
  const names = raw.exampleNames;
  return { features: out, names: names && Array.from(indices, (src) => names[src]) };
}

/**
 * Rebuilds the trial's model from the parameters the coordinator kept when it finished and runs
 * it on the validation split, on tfjs's cpu backend (a report needs no accelerator).
 */
export async function winnerPredictions(
  client: CoordinatorClient,
  status: TrialStatus__Output,
): Promise<ValidationPredictions> {
  await tf.setBackend('cpu');
  const dataset = status.spec?.dataset ?? '';
  const labelColumn = status.spec?.label_column || undefined;
  const spec = parseModelSpec(status.spec?.model ?? '');
  const shapes = modelParams(spec, status.input_shape, status.num_classes);
  const params = await client.getParameters(
    status.trial,
    shapes.map((p) => ({ name: p.name, size: elementCount(p.shape) })),
  );
  const { validation } = await loadSplits(dataset, { labelColumn });
  const raw = await rawValidation(dataset, labelColumn, validation);
  return {
    logits: predictLogits(status, params, validation),
    labels: validation.labels,
    count: validation.count,
    classes: status.num_classes,
    classNames: validation.classNames,
    featureShape: validation.featureShape,
    rawFeatures: raw?.features,
    exampleNames: raw?.names,
  };
}
