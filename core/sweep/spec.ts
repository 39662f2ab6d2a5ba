import * as fs from 'node:fs';
import * as path from 'node:path';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { InvalidArgumentError } from '../errors';
import type { ModelSpec } from '../model-spec';
import { OPTIMIZER_DEFAULTS, type OptimizerKind } from '../optimizer-config';
import type { Mode } from '../trial-spec';
import type { EarlyStoppingConfig } from './early-stopping';
import { isEpochMetric } from './metrics';
import { parseConstraint, type Objective } from './objective';
import type { SearchSpace } from './search-space';
import { positionOf, type SourcePosition } from './source-positions';
import { specErrorMap, sweepSpecSchema, toDomain, type RawSweepSpec } from './spec-schema';

/** Where a trial's data comes from; `spec` is the form trials carry (`csv:PATH`). */
export interface DatasetSettings {
  source: 'mnist' | 'csv' | 'synthetic';
  /** `mnist`, `csv:PATH` or `synthetic:NAME`. */
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
  /** The fixed model; searched `hidden`, `layers`, `hidden_units` override it per trial. */
  model: ModelSpec;
  train: TrainSettings;
  search: SearchSpace;
  budget: SweepBudget;
  refine: RefinePlan;
  objective: Objective;
  earlyStopping: EarlyStoppingConfig | null;
  humanError: number | null;
}

/** One thing wrong with a spec, located in its file. */
export interface SpecProblem extends SourcePosition {
  /** The field's path, e.g. `search.lr.log_uniform` or `objective.subject_to[1]`. */
  field: string;
  message: string;
}

/** A spec that cannot be used; `message` is the first problem as `FILE:LINE:COL: FIELD: WHAT`. */
export class SweepSpecError extends InvalidArgumentError {
  constructor(
    readonly source: string,
    readonly problems: readonly SpecProblem[],
  ) {
    super(formatProblem(source, problems[0]));
  }
}

function formatProblem(source: string, p: SpecProblem): string {
  return `${source}:${p.line}:${p.col}: ${p.field ? `${p.field}: ` : ''}${p.message}`;
}

function fieldName(segments: readonly PropertyKey[]): string {
  return segments
    .map((s, i) => (typeof s === 'number' ? `[${s}]` : `${i === 0 ? '' : '.'}${String(s)}`))
    .join('');
}

export interface ParseSweepSpecOptions {
  /** A relative csv path is taken relative to this folder. Defaults to leaving it as written. */
  baseDir?: string;
}

function syntaxProblem(err: YAMLError, lines: LineCounter): SpecProblem {
  // yaml appends " at line L, column C:" and a source excerpt; the position goes in front.
  const message = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  return { ...lines.linePos(err.pos[0]), field: '', message: `invalid YAML: ${message}` };
}

function issueProblems(issue: z.core.$ZodIssue, locate: Locate): SpecProblem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const at = [...issue.path, key];
      return { ...locate(at, 'key'), field: fieldName(at), message: issue.message };
    });
  }
  const atKey = issue.code === 'custom' && issue.params?.at === 'key';
  return [
    {
      ...locate(issue.path, atKey ? 'key' : 'value'),
      field: fieldName(issue.path),
      message: issue.message,
    },
  ];
}

type Locate = (at: readonly PropertyKey[], kind: 'key' | 'value') => SourcePosition;

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
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new SweepSpecError(
      source,
      doc.errors.map((e) => syntaxProblem(e, lines)),
    );
  }
  if (doc.contents === null) {
    const message = 'the spec is empty; expected a mapping with at least dataset and budget';
    throw new SweepSpecError(source, [{ line: 1, col: 1, field: '', message }]);
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const result = sweepSpecSchema.safeParse(data, { error: specErrorMap });
  if (!result.success) {
    const locate: Locate = (at, kind) => positionOf(doc, lines, at, kind);
    const problems = result.error.issues
      .flatMap((issue) => issueProblems(issue, locate))
      .sort((a, b) => a.line - b.line || a.col - b.col);
    throw new SweepSpecError(source, problems);
  }
  return buildSpec(result.data, source, options);
}

/** Reads and parses a spec file; a relative csv path is taken relative to the file. */
export function readSweepSpec(file: string): SweepSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`sweep spec ${file} cannot be read`, { cause: err });
  }
  return parseSweepSpec(text, file, { baseDir: path.dirname(file) });
}

function buildDataset(raw: RawSweepSpec['dataset'], baseDir?: string): DatasetSettings {
  switch (raw.source) {
    case 'mnist':
      return { source: 'mnist', spec: 'mnist', labelColumn: '' };
    case 'csv': {
      const file = baseDir && !path.isAbsolute(raw.path) ? path.join(baseDir, raw.path) : raw.path;
      return { source: 'csv', spec: `csv:${file}`, labelColumn: raw.label_column ?? '' };
    }
    case 'synthetic':
      return { source: 'synthetic', spec: `synthetic:${raw.name ?? 'spirals'}`, labelColumn: '' };
  }
}

function buildModel(raw: RawSweepSpec['model']): ModelSpec {
  if (!raw) return { type: 'mlp', hidden: [256] };
  if (raw.type === 'lenet5') return { type: 'lenet5' };
  if (raw.hidden !== undefined) return { type: 'mlp', hidden: [...(raw.hidden as number[])] };
  const layers = (raw.layers as number | undefined) ?? 1;
  const units = (raw.hidden_units as number | undefined) ?? 256;
  return { type: 'mlp', hidden: Array.from({ length: layers }, () => units) };
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

function buildSpec(raw: RawSweepSpec, source: string, options: ParseSweepSpecOptions): SweepSpec {
  const objective = buildObjective(raw.objective);
  const search: Record<string, ReturnType<typeof toDomain>> = {};
  for (const [name, domain] of Object.entries(raw.search ?? {})) search[name] = toDomain(domain);
  return {
    name: raw.name ?? path.basename(source).replace(/\.(ya?ml|json)$/i, ''),
    source,
    dataset: buildDataset(raw.dataset, options.baseDir),
    model: buildModel(raw.model),
    train: { ...TRAIN_DEFAULTS, ...(raw.train as Partial<TrainSettings> | undefined) },
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
