import { z } from 'zod';
import { InvalidArgumentError } from '../errors';
import { modelGraphSchema, type ModelGraph } from '../model-graph/layer-spec';
import { shapeProblem } from '../model-graph/parse-graph';
import { parseModelSpec, type ModelSpec } from '../model-spec';
import { fieldName, specErrorMap } from '../spec-file';
import { domainExtremes, type Hyper, type JsonValue, type SearchSpace } from './search-space';

/**
 * A layer-graph model with named placeholders, searched by a sweep: any value of the graph
 * written `$name` (a filter count, a kernel size, a dropout rate, a block's `repeat`, a whole
 * list of layers, a preset's name) is filled per trial from the sampled hyper-parameter `name`,
 * or from `defaults` where the sweep does not search it. Katib's trial template, with the
 * layer graph as the template.
 */
export interface ModelTemplate {
  type: 'template';
  /** `{input?, layers}` or `{preset}`, with placeholders. */
  body: { [key: string]: JsonValue };
  defaults: Hyper;
  /** Every placeholder's name, in the order they first appear. */
  placeholders: string[];
}

const PLACEHOLDER = /^\$([A-Za-z_][A-Za-z0-9_]*)$/;

/** A template's list of layers: the list, or one placeholder standing for it. */
export const templateLayersSchema = z.union(
  [
    z.string().regex(PLACEHOLDER),
    z.array(z.unknown()).min(1, 'expected a non-empty list of layers'),
  ],
  { error: 'expected a non-empty list of layers, or a $placeholder for one' },
);

/** The placeholder a value is, if it is one. */
export function placeholderName(value: unknown): string | undefined {
  return typeof value === 'string' ? PLACEHOLDER.exec(value)?.[1] : undefined;
}

/** Each placeholder of `value` with the path of its first use. */
export function placeholderPaths(value: JsonValue): Map<string, PropertyKey[]> {
  const found = new Map<string, PropertyKey[]>();
  const walk = (v: JsonValue, at: PropertyKey[]): void => {
    const name = placeholderName(v);
    if (name !== undefined) {
      if (!found.has(name)) found.set(name, at);
    } else if (Array.isArray(v)) v.forEach((item, i) => walk(item, [...at, i]));
    else if (v && typeof v === 'object')
      for (const [k, item] of Object.entries(v)) walk(item, [...at, k]);
  };
  walk(value, []);
  return found;
}

function substitute(value: JsonValue, values: Hyper): JsonValue {
  const name = placeholderName(value);
  if (name !== undefined) return structuredClone(values[name]);
  if (Array.isArray(value)) return value.map((v) => substitute(v, values));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, values)]));
  return value;
}

/**
 * A problem found in one instantiation, at a path of the template: where the substituted value
 * was itself a structure (a list of layers), the path stops at the placeholder.
 */
export interface TemplateProblem {
  path: PropertyKey[];
  message: string;
}

function templatePath(body: JsonValue, path: readonly PropertyKey[]): PropertyKey[] {
  const kept: PropertyKey[] = [];
  let at: JsonValue | undefined = body;
  for (const key of path) {
    if (at === null || typeof at !== 'object' || placeholderName(at) !== undefined) break;
    at = (at as Record<PropertyKey, JsonValue>)[key as string];
    kept.push(key);
    if (at === undefined || placeholderName(at) !== undefined) break;
  }
  return kept;
}

/** The model one set of values makes, or the first problem with it. */
function tryInstantiate(
  template: ModelTemplate,
  values: Hyper,
): { model: ModelSpec } | { problem: TemplateProblem } {
  const body = substitute(template.body, values) as { [key: string]: JsonValue };
  if ('preset' in template.body) {
    const preset = String(body.preset);
    try {
      // A file path here would read files per trial; presets are the short forms only.
      if (!/^(resnet:|vgg:|mlp:|lenet5$)/.test(preset))
        throw new InvalidArgumentError(
          `expected a preset (mlp:UNITS,..., lenet5, resnet:N, vgg:small), got ${JSON.stringify(body.preset)}`,
        );
      return { model: parseModelSpec(preset) };
    } catch (err) {
      return { problem: { path: ['preset'], message: (err as Error).message } };
    }
  }
  const result = modelGraphSchema.safeParse(body, { error: specErrorMap });
  if (!result.success) {
    const issue = result.error.issues[0];
    return { problem: { path: [...issue.path], message: issue.message } };
  }
  const graph = result.data as ModelGraph;
  const problem = shapeProblem(graph);
  return problem
    ? { problem: { path: [...problem.path], message: problem.message } }
    : { model: { type: 'graph', graph } };
}

function describeValues(template: ModelTemplate, values: Hyper): string {
  return template.placeholders.map((n) => `${n} = ${JSON.stringify(values[n])}`).join(', ');
}

/**
 * The trial's model: the template with `hyper` (and the defaults) filled in. Throws
 * InvalidArgumentError naming the values and the layer when they make no valid model.
 */
export function instantiateTemplate(template: ModelTemplate, hyper: Hyper): ModelSpec {
  const values = { ...template.defaults, ...hyper };
  const made = tryInstantiate(template, values);
  if ('model' in made) return made.model;
  const at = fieldName(templatePath(template.body, made.problem.path));
  throw new InvalidArgumentError(
    `model with ${describeValues(template, values)}: ${at ? `${at}: ` : ''}${made.problem.message}`,
  );
}

/**
 * What is wrong with a template before any trial runs, each problem at its path in the template
 * (or, for search names, at `['search', name]`): placeholders neither searched nor defaulted,
 * and the models the extremes of each searched domain make (every choice, both ends of a
 * range; the other placeholders at their defaults, else their first extreme). Combinations of
 * extremes are not all tried: a trial whose values make no model fails on its own.
 */
export function templateProblems(template: ModelTemplate, search: SearchSpace): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  const uses = placeholderPaths(template.body);
  for (const [name, at] of uses) {
    if (!(name in search) && !(name in template.defaults))
      problems.push({
        path: at,
        message: `placeholder $${name} is neither searched nor given under model.defaults`,
      });
  }
  if (problems.length > 0) return problems;
  const corners = new Map(
    template.placeholders
      .filter((n) => n in search)
      .map((n) => [n, domainExtremes(search[n])] as const),
  );
  const base: Hyper = { ...template.defaults };
  for (const [name, values] of corners) if (!(name in base)) base[name] = values[0];
  const seen = new Set<string>();
  const probe = (values: Hyper): void => {
    const made = tryInstantiate(template, values);
    if ('model' in made) return;
    const path = templatePath(template.body, made.problem.path);
    const message = `with ${describeValues(template, values)}: ${made.problem.message}`;
    const key = `${fieldName(path)}\n${made.problem.message}`;
    if (seen.has(key)) return;
    seen.add(key);
    problems.push({ path, message });
  };
  probe(base);
  for (const [name, values] of corners) for (const v of values) probe({ ...base, [name]: v });
  return problems;
}
