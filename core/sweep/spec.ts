import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from '../errors';
import { OPTIMIZER_DEFAULTS, type OptimizerKind } from '../optimizer-config';
import type { Mode } from '../trial-spec';
import type { EarlyStoppingConfig } from './early-stopping';
import { isEpochMetric } from './metrics';
import { parseConstraint, type Objective } from './objective';
import type { SearchSpace } from './search-space';
import { parseSpecText, SpecFileError, type Locate } from '../spec-file';
import { buildSweepModel, type SweepModel } from './model-section';
export type { SpecProblem } from '../spec-file';
import { sweepSpecSchema, toDomain, type RawSweepSpec } from './spec-schema';

/** Where a trial's data comes from; `spec` is the form trials carry (`csv:PATH`). */
export interface DatasetSettings {
  source: 'mnist' | 'csv' | 'images' | 'idx' | 'synthetic';
  /** `mnist`, `csv:PATH`, `images:DIR[@HxW]`, `idx:IMAGES,LABELS` or `synthetic:NAME`. */
  spec: string;
  /** For csv, the label column; "" means the last column. */
  labelColumn: string;
}

/**
 * The fixed training settings, every one filled in. Keys are the spec's own (snake_case), the
 * names a search overrides.
 */
export interface TrainSettings {
  optimizer: OptimizerKind;
  lr: number;
  batch: number;
  epochs: number;
  mode: Mode;
  lr_decay: string;
  l2: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  momentum: number;
  rho: number;
  seed: number;
  clip_norm: number;
  /** Data augmentation (core/augment-spec.ts); "" for none. */
  augment: string;
  /** Gradient compression of pushes that cross a network: none, bf16 or fp16. */
  compress: string;
  /** How pulled values cross a network: none, bf16 or fp16. */
  compress_pull: string;
  /** Workers compute a batch while the push before it travels (async and ssp only). */
  overlap: boolean;
  /** Transfer learning (core/transfer.ts): where trials start, what they freeze and redraw. */
  init_from: string;
  /** A count of layers or layer names; a sweep may search it (fine-tune vs re-train). */
  freeze: string | number;
  reinit: string;
}

/**
 * Defaults of the settings a spec leaves out: those of `caviar train` (core/trial-spec,
 * OPTIMIZER_DEFAULTS, seed 1, no clipping).
 */
export const TRAIN_DEFAULTS: Readonly<TrainSettings> = Object.freeze({
  optimizer: 'adam',
  lr: OPTIMIZER_DEFAULTS.lr,
  batch: 128,
  epochs: 5,
  mode: 'async',
  lr_decay: '',
  l2: OPTIMIZER_DEFAULTS.l2,
  beta1: OPTIMIZER_DEFAULTS.beta1,
  beta2: OPTIMIZER_DEFAULTS.beta2,
  epsilon: OPTIMIZER_DEFAULTS.epsilon,
  momentum: OPTIMIZER_DEFAULTS.momentum,
  rho: OPTIMIZER_DEFAULTS.rho,
  seed: 1,
  clip_norm: 0,
  augment: '',
  compress: 'none',
  compress_pull: 'none',
  overlap: false,
  init_from: '',
  freeze: '',
  reinit: '',
});

export interface SweepBudget {
  trials: number;
  /** Trials running at once. Defaults to min(trials, 4). */
  parallel: number;
  /** Seed of the random search. Defaults to 0. */
  seed: number;
}

/** Coarse to fine: after the first round, `rounds` more of `trials` each, around the `top`. */
export interface RefinePlan {
  rounds: number;
  top: number;
  trials: number;
}

/** A validated sweep spec with every default filled in. */
export interface SweepSpec {
  name: string;
  /** The file it came from, for messages. */
  source: string;
  dataset: DatasetSettings;
  /**
   * The fixed model, where searched `hidden`, `layers`, `hidden_units` override an MLP's per
   * trial; or a layer-graph template whose placeholders each trial fills in.
   */
  model: SweepModel;
  train: TrainSettings;
  search: SearchSpace;
  budget: SweepBudget;
  refine: RefinePlan;
  objective: Objective;
  earlyStopping: EarlyStoppingConfig | null;
  humanError: number | null;
}

/** A sweep spec that cannot be used; `message` is the first problem as `FILE:LINE:COL: FIELD: WHAT`. */
export class SweepSpecError extends SpecFileError {}

export interface ParseSweepSpecOptions {
  /** Relative data paths are taken relative to this folder. Defaults to leaving them as written. */
  baseDir?: string;
}

/**
 * Parses and validates a sweep spec written in YAML or JSON (JSON is YAML). Throws a
 * SweepSpecError whose message is one line, `FILE:LINE:COL: FIELD: PROBLEM`, for the first
 * problem in file order; `problems` lists them all.
 */
export function parseSweepSpec(
  text: string,
  source: string,
  options: ParseSweepSpecOptions = {},
): SweepSpec {
  const { data, locate } = parseSpecText(
    text,
    source,
    sweepSpecSchema,
    'the spec is empty; expected a mapping with at least dataset and budget',
    (src, problems) => new SweepSpecError(src, problems),
  );
  return buildSpec(data as RawSweepSpec, source, options, locate);
}

/** Reads and parses a spec file; relative data paths are taken relative to the file. */
export function readSweepSpec(file: string): SweepSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`sweep spec ${file} cannot be read`, { cause: err });
  }
  return parseSweepSpec(text, file, { baseDir: path.dirname(file) });
}

/** The spec's train settings over the defaults; init_from a directory beside the spec. */
function trainSettings(raw: Partial<TrainSettings> | undefined, baseDir?: string): TrainSettings {
  const train = { ...TRAIN_DEFAULTS, ...raw };
  const beside = baseDir && train.init_from && path.join(baseDir, train.init_from);
  if (beside && !path.isAbsolute(train.init_from) && fs.existsSync(beside))
    train.init_from = beside;
  return train;
}

function buildDataset(raw: RawSweepSpec['dataset'], baseDir?: string): DatasetSettings {
  const near = (file: string) =>
    baseDir && !path.isAbsolute(file) ? path.join(baseDir, file) : file;
  switch (raw.source) {
    case 'mnist':
      return { source: 'mnist', spec: 'mnist', labelColumn: '' };
    case 'csv':
      return { source: 'csv', spec: `csv:${near(raw.path)}`, labelColumn: raw.label_column ?? '' };
    case 'images': {
      const size = raw.image_size ? `@${raw.image_size[0]}x${raw.image_size[1]}` : '';
      return { source: 'images', spec: `images:${near(raw.path)}${size}`, labelColumn: '' };
    }
    case 'idx':
      return {
        source: 'idx',
        spec: `idx:${near(raw.images)},${near(raw.labels)}`,
        labelColumn: '',
      };
    case 'synthetic':
      return { source: 'synthetic', spec: `synthetic:${raw.name ?? 'spirals'}`, labelColumn: '' };
  }
}

function buildObjective(raw: RawSweepSpec['objective']): Objective {
  if (!raw) return { metric: 'val_accuracy', direction: 'maximize', constraints: [] };
  return {
    metric: (raw.maximize ?? raw.minimize) as string,
    direction: raw.maximize !== undefined ? 'maximize' : 'minimize',
    constraints: (raw.subject_to ?? []).map(parseConstraint),
  };
}

function buildEarlyStopping(
  raw: RawSweepSpec['early_stopping'],
  objective: Objective,
): EarlyStoppingConfig | null {
  if (!raw) return null;
  // Patience watches a validation metric: the objective's when it is measured per epoch.
  const metric = raw.metric ?? (isEpochMetric(objective.metric) ? objective.metric : 'val_loss');
  if (raw.asha) {
    return {
      kind: 'asha',
      metric,
      minEpochs: raw.asha.min_epochs ?? 1,
      reduction: raw.asha.reduction ?? 3,
    };
  }
  return { kind: 'patience', metric, patience: raw.patience as number };
}

function buildSpec(
  raw: RawSweepSpec,
  source: string,
  options: ParseSweepSpecOptions,
  locate: Locate,
): SweepSpec {
  const objective = buildObjective(raw.objective);
  const search: Record<string, ReturnType<typeof toDomain>> = {};
  for (const [name, domain] of Object.entries(raw.search ?? {})) search[name] = toDomain(domain);
  return {
    name: raw.name ?? path.basename(source).replace(/\.(ya?ml|json)$/i, ''),
    source,
    dataset: buildDataset(raw.dataset, options.baseDir),
    model: buildSweepModel(raw.model, search, {
      sweep: (problems) => new SweepSpecError(source, problems),
      locate,
      baseDir: options.baseDir,
    }),
    train: trainSettings(raw.train as Partial<TrainSettings> | undefined, options.baseDir),
    search,
    budget: {
      trials: raw.budget.trials,
      parallel: raw.budget.parallel ?? Math.min(raw.budget.trials, 4),
      seed: raw.budget.seed ?? 0,
    },
    refine: raw.refine
      ? { rounds: raw.refine.rounds ?? 1, top: raw.refine.top, trials: raw.refine.trials }
      : { rounds: 0, top: 1, trials: 0 },
    objective,
    earlyStopping: buildEarlyStopping(raw.early_stopping, objective),
    humanError: raw.human_error ?? null,
  };
}

/** How many trials each round runs: the coarse round, then each refine round. */
export function roundSizes(spec: SweepSpec): number[] {
  return [
    spec.budget.trials,
    ...Array.from({ length: spec.refine.rounds }, () => spec.refine.trials),
  ];
}
