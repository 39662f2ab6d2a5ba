import { z } from 'zod';
import { AT_KEY, strict } from '../spec-file';
import { OVERLAP_NEEDS_ASYNC } from '../trial-spec';
import { SYNTHETIC_NAMES } from '../datasets/spirals';
import { isEpochMetric, isMetricName, METRIC_NAMES } from './metrics';
import { templateLayersSchema } from './model-template';
import { parseConstraint } from './objective';
import {
  DOMAIN_KINDS,
  domainProblem,
  isSearchable,
  paramValueProblem,
  RANGE_KINDS,
  rangeShapeProblem,
  SEARCHABLE_NAMES,
  TRAIN_KEYS,
  type JsonValue,
  type RangeKind,
  type SearchDomain,
} from './search-space';

/**
 * The zod schema of a sweep spec, as parsed from YAML or JSON. Every object is strict (an
 * unknown key is an error naming it); checks that span fields (search names against `train`
 * and `model`, `refine.top` against the budget) run once the shape is right.
 */

function setting(name: string) {
  return z.unknown().superRefine((value, ctx) => {
    const problem = paramValueProblem(name, value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

function integer(min: number, max = 1_000_000) {
  return z
    .number()
    .refine(
      (v) => Number.isInteger(v) && v >= min && v <= max,
      `expected an integer in [${min}, ${max}]`,
    );
}

function range(kind: RangeKind) {
  return z.unknown().superRefine((value, ctx) => {
    const pair = Array.isArray(value) && value.length === 2 && value.every(Number.isFinite);
    const problem = pair
      ? rangeShapeProblem(kind, value[0] as number, value[1] as number)
      : kind === 'uniform' || kind === 'log_uniform'
        ? 'expected two numbers, low < high'
        : 'expected two numbers, low <= high';
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

const DOMAIN_HELP = `expected one of ${DOMAIN_KINDS.map((k) => `{${k}: ${k === 'choice' ? '[values...]' : '[low, high]'}}`).join(', ')}`;

const domainSchema = z
  .strictObject(
    {
      uniform: range('uniform').optional(),
      log_uniform: range('log_uniform').optional(),
      int: range('int').optional(),
      int_log: range('int_log').optional(),
      pow2: range('pow2').optional(),
      choice: z.array(z.unknown()).min(1, 'expected a non-empty list of values').optional(),
    },
    {
      error: (iss) =>
        iss.code === 'unrecognized_keys' || iss.code === 'invalid_type' ? DOMAIN_HELP : undefined,
    },
  )
  .superRefine((domain, ctx) => {
    if (ctx.issues.length > 0) return;
    const kinds = Object.keys(domain);
    if (kinds.length === 0) ctx.addIssue({ code: 'custom', message: DOMAIN_HELP });
    if (kinds.length > 1)
      ctx.addIssue({ code: 'custom', message: `give one domain, not ${kinds.join(' and ')}` });
  });

export type RawDomain = z.infer<typeof domainSchema>;

/** The normalized form of a domain that passed domainSchema. */
export function toDomain(raw: RawDomain): SearchDomain {
  if (raw.choice) return { kind: 'choice', values: raw.choice as JsonValue[] };
  const kind = RANGE_KINDS.find((k) => raw[k] !== undefined) as RangeKind;
  const [low, high] = raw[kind] as [number, number];
  return { kind, low, high };
}

const datasetSchema = z.discriminatedUnion('source', [
  strict({ source: z.literal('mnist') }),
  strict({
    source: z.literal('csv'),
    path: z.string().min(1, 'expected a file path'),
    label_column: z.string().min(1).optional(),
  }),
  strict({
    source: z.literal('images'),
    path: z.string().min(1, 'expected a folder with one sub-folder per class'),
    image_size: z
      .tuple([z.number().int().min(1).max(4096), z.number().int().min(1).max(4096)], {
        error: 'expected [height, width]',
      })
      .optional(),
  }),
  strict({
    source: z.literal('idx'),
    images: z.string().min(1, 'expected an IDX file of images'),
    labels: z.string().min(1, 'expected an IDX file of labels'),
  }),
  strict({
    source: z.literal('synthetic'),
    name: z
      .string()
      .refine((n) => SYNTHETIC_NAMES.includes(n), `expected one of ${SYNTHETIC_NAMES.join(', ')}`)
      .optional(),
  }),
]);

const modelSchema = z.discriminatedUnion('type', [
  strict({
    type: z.literal('mlp'),
    hidden: setting('hidden').optional(),
    layers: setting('layers').optional(),
    hidden_units: setting('hidden_units').optional(),
  }),
  strict({ type: z.literal('lenet5') }),
  strict({
    type: z.literal('graph'),
    preset: z.string().min(1).optional(),
    file: z.string().min(1).optional(),
    input: z.unknown().optional(),
    layers: templateLayersSchema.optional(),
    defaults: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a placeholder name'),
        z.unknown(),
      )
      .optional(),
  }).superRefine((m, ctx) => {
    if (ctx.issues.length > 0) return;
    const given = (['preset', 'file', 'layers'] as const).filter((k) => m[k] !== undefined);
    if (given.length !== 1)
      ctx.addIssue({
        code: 'custom',
        message: 'give exactly one of preset: NAME, file: PATH, layers: [...]',
      });
    else if (m.input !== undefined && given[0] !== 'layers')
      ctx.addIssue({
        code: 'custom',
        path: ['input'],
        message: 'input goes with layers: a preset or file names its own',
        params: AT_KEY,
      });
  }),
]);

const trainSchema = strict(
  Object.fromEntries(TRAIN_KEYS.map((key) => [key, setting(key).optional()])) as Record<
    string,
    z.ZodOptional<ReturnType<typeof setting>>
  >,
);

const metricSchema = z
  .string()
  .refine(isMetricName, `unknown metric; expected one of ${METRIC_NAMES.join(', ')}`);

const constraintSchema = z.string().superRefine((text, ctx) => {
  try {
    parseConstraint(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const objectiveSchema = strict({
  maximize: metricSchema.optional(),
  minimize: metricSchema.optional(),
  subject_to: z.array(constraintSchema).optional(),
}).superRefine((o, ctx) => {
  if (ctx.issues.length > 0) return;
  if ((o.maximize === undefined) === (o.minimize === undefined))
    ctx.addIssue({
      code: 'custom',
      message: 'give exactly one of maximize: METRIC, minimize: METRIC',
    });
});

const earlyStoppingSchema = strict({
  patience: integer(1).optional(),
  asha: strict({
    min_epochs: integer(1).optional(),
    reduction: integer(2, 100).optional(),
  }).optional(),
  metric: z
    .string()
    .refine(isEpochMetric, 'expected a per-epoch metric such as val_loss or val_accuracy')
    .optional(),
}).superRefine((e, ctx) => {
  if (ctx.issues.length > 0) return;
  if ((e.patience === undefined) === (e.asha === undefined))
    ctx.addIssue({
      code: 'custom',
      message: 'give exactly one of patience: N, asha: { min_epochs, reduction }',
    });
});

export const sweepSpecSchema = strict({
  name: z.string().min(1).optional(),
  dataset: datasetSchema,
  model: modelSchema.optional(),
  train: trainSchema.optional(),
  search: z.record(z.string(), domainSchema).optional(),
  budget: strict({
    trials: integer(1, 100_000),
    parallel: integer(1, 10_000).optional(),
    seed: integer(0, 2 ** 31 - 1).optional(),
  }),
  refine: strict({
    rounds: integer(0, 100).optional(),
    top: integer(1, 100_000),
    trials: integer(1, 100_000),
  }).optional(),
  objective: objectiveSchema.optional(),
  early_stopping: earlyStoppingSchema.optional(),
  human_error: z
    .number()
    .refine((v) => v >= 0 && v < 1, 'expected an error rate in [0, 1)')
    .nullable()
    .optional(),
}).superRefine((spec, ctx) => {
  // Unknown keys do not abort zod's parse; checks across fields wait for a well-formed spec.
  if (ctx.issues.length > 0) return;
  const search = spec.search ?? {};
  // A graph model's placeholders are known once its file is read: buildSweepModel checks them.
  const graph = spec.model?.type === 'graph';
  const issue = (path: PropertyKey[], message: string, atKey = false) =>
    ctx.addIssue({ code: 'custom', path, message, ...(atKey ? { params: AT_KEY } : {}) });
  for (const [name, raw] of Object.entries(search)) {
    if (graph && !TRAIN_KEYS.includes(name)) continue;
    if (!isSearchable(name)) {
      issue(
        ['search', name],
        `unknown hyper-parameter; names under search are keys of train or model: ${SEARCHABLE_NAMES.join(', ')}`,
        true,
      );
      continue;
    }
    const domain = toDomain(raw);
    if (domain.kind === 'choice') {
      domain.values.forEach((value, i) => {
        const problem = paramValueProblem(name, value);
        if (problem) issue(['search', name, 'choice', i], problem);
      });
    } else {
      const problem = domainProblem(name, domain);
      if (problem) issue(['search', name, domain.kind], problem);
    }
  }
  const modelNames = ['hidden', 'layers', 'hidden_units'];
  const searchedModel = graph ? [] : modelNames.filter((n) => n in search);
  if (spec.model?.type === 'lenet5' && searchedModel.length > 0)
    issue(['search', searchedModel[0]], 'model lenet5 has no hidden layers to search', true);
  if ('hidden' in search && searchedModel.length > 1)
    issue(['search', 'hidden'], 'search hidden, or layers and hidden_units, not both', true);
  const model = spec.model;
  if (model?.type === 'mlp' && model.hidden !== undefined) {
    const extra = (['layers', 'hidden_units'] as const).find((k) => model[k] !== undefined);
    if (extra) issue(['model', extra], 'give hidden, or layers and hidden_units, not both', true);
  }
  // The values a train setting takes: fixed, or every choice of its search.
  const takes = (name: string): unknown[] => {
    if (search[name] !== undefined) {
      const domain = toDomain(search[name]);
      return domain.kind === 'choice' ? domain.values : [];
    }
    const fixed = (spec.train as Record<string, unknown> | undefined)?.[name];
    return fixed === undefined ? [] : [fixed];
  };
  if (takes('overlap').includes(true) && takes('mode').includes('sync'))
    issue(['overlap' in search ? 'search' : 'train', 'overlap'], OVERLAP_NEEDS_ASYNC, true);
  if (spec.refine && spec.refine.top > spec.budget.trials)
    issue(['refine', 'top'], `expected at most budget.trials (${spec.budget.trials})`);
});

export type RawSweepSpec = z.infer<typeof sweepSpecSchema>;
