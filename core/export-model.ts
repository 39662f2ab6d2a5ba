import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError } from './errors';
import { buildLayersModel, setModelParameters } from './layers-model';
import { formatModelSpec, type ModelSpec } from './model-spec';

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
