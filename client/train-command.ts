import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrialSpec } from '../proto/gen/caviar/v1/TrialSpec';
import type { TrialStatus__Output } from '../proto/gen/caviar/v1/TrialStatus';
import { CoordinatorClient } from '../core/coordinator-client';
import { resolveTrialSpec } from '../core/trial-spec';
import { parseCompression, parsePullCompression } from '../core/compression';
import { InvalidArgumentError } from '../core/errors';
import { checkAugmentFits, formatAugment, parseAugment } from '../core/augment-spec';
import { loadSplits } from '../core/datasets';
import { elementCount } from '../core/placement';
import { formatModelSpec, modelParams, parseModelSpec } from '../core/model-spec';
import { exportLayersModel } from '../core/export-model';
import { checkTransfer } from '../core/transfer';
import type { LocalClusterFlags } from './local-cluster';
import { onCluster } from './on-cluster';
import { follow } from './follow';
import { TrialProgress } from './progress';
import { historyTable, summaryText, trainSummary } from './summary';

export interface TrainOptions extends LocalClusterFlags {
  local?: boolean;
  coordinator?: string;
  dataset: string;
  labelColumn?: string;
  imageSize?: [number, number];
  model: string;
  optimizer: string;
  lr: number;
  lrDecay?: string;
  l2: number;
  batch: number;
  epochs: number;
  mode: string;
  seed: number;
  clipNorm: number;
  augment?: string;
  compress?: string;
  compressPull?: string;
  overlap?: boolean;
  initFrom?: string;
  freeze?: string;
  reinit?: string;
  name?: string;
  export?: string;
  json?: boolean;
  memberTtl?: number;
}

/** The data set as trials carry it: an images:DIR's size travels in its spec (`@HxW`). */
function withImageSize(dataset: string, size: [number, number] | undefined): string {
  if (!size) return dataset;
  if (!dataset.trim().startsWith('images:') || /@\d+x\d+$/.test(dataset.trim()))
    throw new InvalidArgumentError(
      `--image-size applies to an images:DIR data set without a size, not "${dataset}"`,
    );
  return `${dataset.trim()}@${size[0]}x${size[1]}`;
}

export function trialSpecFromOptions(o: TrainOptions): TrialSpec {
  return {
    name: o.name ?? '',
    dataset: withImageSize(o.dataset, o.imageSize),
    label_column: o.labelColumn ?? '',
    // A file's contents travel, not its path: the coordinator and workers may not have it.
    model: formatModelSpec(parseModelSpec(o.model)),
    optimizer: { kind: o.optimizer, lr: o.lr, lr_decay: o.lrDecay ?? '', l2: o.l2 },
    batch: o.batch,
    epochs: o.epochs,
    mode: o.mode,
    seed: o.seed,
    clip_norm: o.clipNorm,
    augment: formatAugment(parseAugment(o.augment ?? '')),
    compress: parseCompression(o.compress),
    compress_pull: parsePullCompression(o.compressPull),
    overlap: o.overlap === true,
    init_from: initFromOption(o.initFrom),
    freeze: o.freeze ?? '',
    reinit: o.reinit ?? '',
  };
}

/**
 * A directory here travels as its absolute path (the coordinator reads it, and with --local it
 * runs here); anything else is a trial id of the cluster.
 */
function initFromOption(value: string | undefined): string {
  const v = (value ?? '').trim();
  if (!v) return '';
  return fs.existsSync(v) && fs.statSync(v).isDirectory() ? path.resolve(v) : v;
}

/** Submits a trial and follows it to its end, showing progress unless `json`. */
export async function runTrial(
  client: CoordinatorClient,
  spec: TrialSpec,
  json: boolean,
): Promise<TrialStatus__Output> {
  const submitted = await client.submitTrial(spec);
  const progress = json ? undefined : new TrialProgress();
  try {
    return await follow(
      submitted,
      () => client.watchTrial(submitted.trial),
      (s) => progress?.update(s),
    );
  } finally {
    progress?.stop();
  }
}

async function exportModel(
  client: CoordinatorClient,
  status: TrialStatus__Output,
  dir: string,
): Promise<void> {
  const spec = parseModelSpec(status.spec?.model ?? '');
  const params = modelParams(spec, status.input_shape, status.num_classes);
  const values = await client.getParameters(
    status.trial,
    params.map((p) => ({ name: p.name, size: elementCount(p.shape) })),
  );
  await exportLayersModel(dir, spec, status.input_shape, status.num_classes, values);
}

/** `caviar train`: on an ephemeral local cluster (the default) or a running one (`--coordinator`). */
export async function trainCommand(options: TrainOptions): Promise<number> {
  const spec = trialSpecFromOptions(options);
  const resolved = resolveTrialSpec(spec);
  // Refuse bad data before starting any process: the user gets one line, not a dead cluster.
  const validate = async () => {
    const splits = await loadSplits(resolved.dataset, {
      labelColumn: resolved.labelColumn || undefined,
    });
    const { featureShape, numClasses } = splits.train;
    checkAugmentFits(resolved.augment, featureShape);
    checkTransfer(modelParams(resolved.model, featureShape, numClasses), resolved.transfer);
  };
  return onCluster(options, validate, async (client) => {
    const status = await runTrial(client, spec, options.json ?? false);
    if (options.export && status.status === 'completed')
      await exportModel(client, status, options.export);
    const summary = trainSummary(status);
    if (options.json) {
      process.stdout.write(JSON.stringify(summary) + '\n');
    } else {
      process.stdout.write(historyTable(status) + '\n' + summaryText(summary) + '\n');
      if (options.export) process.stdout.write(`model exported to ${options.export}\n`);
    }
    return status.status === 'completed' ? 0 : 1;
  });
}
