import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError } from './errors';
import { buildLayersModel, setModelParameters } from './layers-model';
import { formatModelSpec, type ModelSpec } from './model-spec';
import type { SourceTensor } from './transfer';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** model.json as tfjs-node's file:// handler writes it: topology plus a manifest naming weights.bin. */
function modelJson(
  artifacts: tf.io.ModelArtifacts,
  metadata: Record<string, unknown>,
): tf.io.ModelJSON {
  return {
    modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'],
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
    userDefinedMetadata: { caviar: metadata },
  };
}

/**
 * Writes a trained model as a standard tfjs LayersModel (`model.json` + `weights.bin`) into
 * `dir`, loadable by tf.loadLayersModel('file://DIR/model.json') under tfjs-node or over HTTP.
 */
export async function exportLayersModel(
  dir: string,
  spec: ModelSpec,
  inputShape: readonly number[],
  numClasses: number,
  params: ReadonlyMap<string, Float32Array>,
): Promise<void> {
  const model = buildLayersModel(spec, inputShape, numClasses);
  try {
    setModelParameters(model, params);
    const metadata = { model: formatModelSpec(spec), inputShape: [...inputShape], numClasses };
    await fs.mkdir(dir, { recursive: true });
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const weights = tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0));
        // Weights first: a reader that finds model.json finds its weights too.
        await fs.writeFile(path.join(dir, WEIGHTS_BIN), new Uint8Array(weights));
        await fs.writeFile(
          path.join(dir, MODEL_JSON),
          JSON.stringify(modelJson(artifacts, metadata)),
        );
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      }),
    );
  } finally {
    model.dispose();
  }
}

async function readModelJson(file: string): Promise<tf.io.ModelJSON> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(
      `cannot read exported model ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    return JSON.parse(text) as tf.io.ModelJSON;
  } catch (err) {
    throw new InvalidArgumentError(`exported model ${file} is not valid JSON`, { cause: err });
  }
}

/** Reads every weights file the manifest names, in order, as one buffer. */
async function readWeights(
  dir: string,
  manifest: tf.io.WeightsManifestConfig,
): Promise<[tf.io.WeightsManifestEntry[], ArrayBuffer]> {
  const specs = manifest.flatMap((group) => group.weights);
  const buffers: ArrayBuffer[] = [];
  for (const group of manifest) {
    for (const file of group.paths) {
      const bytes = await fs.readFile(path.join(dir, file)).catch((err: Error) => {
        throw new InvalidArgumentError(
          `cannot read weights file ${path.join(dir, file)}: ${err.message}`,
          { cause: err },
        );
      });
      buffers.push(
        bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      );
    }
  }
  return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
}

/** Loads a model written by exportLayersModel (or any tfjs LayersModel directory). */
export async function loadExportedModel(dir: string): Promise<tfl.LayersModel> {
  const json = await readModelJson(path.join(dir, MODEL_JSON));
  const artifacts = await tf.io.getModelArtifactsForJSON(json, (manifest) =>
    readWeights(dir, manifest),
  );
  return tfl.loadLayersModel(tf.io.fromMemory(artifacts));
}

/**
 * The float32 tensors of a LayersModel directory by weight name (`LAYER/kernel`), read from its
 * manifest without building the model: what a trial started with --init-from DIR takes.
 */
export async function readExportedTensors(dir: string): Promise<Map<string, SourceTensor>> {
  const json = await readModelJson(path.join(dir, MODEL_JSON));
  if (!Array.isArray(json.weightsManifest))
    throw new InvalidArgumentError(`exported model ${dir} has no weights manifest`);
  const [specs, buffer] = await readWeights(dir, json.weightsManifest);
  const tensors = new Map<string, SourceTensor>();
  let offset = 0;
  for (const spec of specs) {
    if (spec.dtype !== 'float32' || spec.quantization)
      throw new InvalidArgumentError(
        `exported model ${dir}: weight ${spec.name} is ${spec.quantization ? 'quantized' : spec.dtype}; only float32 weights can start a trial`,
      );
    const bytes = spec.shape.reduce((a, b) => a * b, 1) * 4;
    if (offset + bytes > buffer.byteLength)
      throw new InvalidArgumentError(
        `exported model ${dir}: its weights files end before weight ${spec.name}`,
      );
    tensors.set(spec.name, {
      shape: spec.shape,
      values: new Float32Array(buffer.slice(offset, offset + bytes)),
    });
    offset += bytes;
  }
  return tensors;
}
