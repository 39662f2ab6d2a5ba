import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors';
import type { ModelSpec } from '../model-spec';
import { ModelSpecError } from '../model-graph/parse-graph';
import {
  fieldName,
  inFileOrder,
  parseSpecText,
  SpecFileError,
  strict,
  type Locate,
  type SpecProblem,
} from '../spec-file';
import {
  placeholderPaths,
  templateLayersSchema,
  templateProblems,
  type ModelTemplate,
} from './model-template';
import { TRAIN_KEYS, type Hyper, type JsonValue, type SearchSpace } from './search-space';
import type { RawSweepSpec } from './spec-schema';

/** A sweep's model: fixed, or a layer graph whose placeholders its trials fill in. */
export type SweepModel = ModelSpec | ModelTemplate;

/** The sweep file's errors and the model file's each keep their own class and file. */
interface Failures {
  sweep: (problems: SpecProblem[]) => SpecFileError;
  locate: Locate;
  baseDir?: string;
}

// A template file is a graph whose values may be placeholders: only its outline is checked
// here, the layers once each extreme of the search is filled in.
const templateFileSchema = strict({
  input: z.unknown().optional(),
  layers: templateLayersSchema,
});

function readTemplateFile(
  file: string,
  baseDir: string | undefined,
): { body: { [key: string]: JsonValue }; source: string; locate: Locate } {
  const source = baseDir && !path.isAbsolute(file) ? path.join(baseDir, file) : file;
  let text: string;
  try {
    text = fs.readFileSync(source, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`model file ${source} cannot be read`, { cause: err });
  }
  const { data, locate } = parseSpecText(
    text,
    source,
    templateFileSchema,
    'the model spec is empty; expected a mapping with layers (and input)',
    (src, problems) => new ModelSpecError(src, problems),
  );
  return { body: data as { [key: string]: JsonValue }, source, locate };
}

function located(locate: Locate, at: PropertyKey[], message: string, kind?: 'key'): SpecProblem {
  return { ...locate(at, kind), field: fieldName(at), message };
}

function buildTemplate(
  raw: Extract<NonNullable<RawSweepSpec['model']>, { type: 'graph' }>,
  search: SearchSpace,
  fail: Failures,
): ModelTemplate {
  const file = raw.file === undefined ? undefined : readTemplateFile(raw.file, fail.baseDir);
  const body: { [key: string]: JsonValue } = file
    ? file.body
    : raw.preset !== undefined
      ? { preset: raw.preset }
      : {
          ...(raw.input === undefined ? {} : { input: raw.input as JsonValue }),
          layers: raw.layers as JsonValue[],
        };
  const uses = placeholderPaths(body);
  const template: ModelTemplate = {
    type: 'template',
    body,
    defaults: (raw.defaults ?? {}) as Hyper,
    placeholders: [...uses.keys()],
  };
  // Problems with the sweep file's own fields come first; the model file's after.
  const own: SpecProblem[] = [];
  for (const name of Object.keys(search)) {
    const placeholder = uses.has(name);
    if (placeholder && TRAIN_KEYS.includes(name))
      own.push(
        located(
          fail.locate,
          ['search', name],
          `$${name} is a placeholder of the model and the train setting ${name}: rename the placeholder`,
          'key',
        ),
      );
    else if (!placeholder && !TRAIN_KEYS.includes(name))
      own.push(
        located(
          fail.locate,
          ['search', name],
          `unknown hyper-parameter; names under search are keys of train (${TRAIN_KEYS.join(', ')}) or placeholders of the model (${template.placeholders.map((p) => `$${p}`).join(', ') || 'none'})`,
          'key',
        ),
      );
  }
  for (const name of Object.keys(template.defaults))
    if (!uses.has(name))
      own.push(
        located(
          fail.locate,
          ['model', 'defaults', name],
          `the model has no placeholder $${name}`,
          'key',
        ),
      );
  const problems = templateProblems(template, search);
  if (!file)
    own.push(...problems.map((p) => located(fail.locate, ['model', ...p.path], p.message)));
  if (own.length > 0) throw fail.sweep(inFileOrder(own));
  if (file && problems.length > 0)
    throw new ModelSpecError(
      file.source,
      inFileOrder(problems.map((p) => located(file.locate, p.path, p.message))),
    );
  return template;
}

/** The sweep's model section with its defaults filled in and, for a graph, checked as above. */
export function buildSweepModel(
  raw: RawSweepSpec['model'],
  search: SearchSpace,
  fail: Failures,
): SweepModel {
  if (!raw) return { type: 'mlp', hidden: [256] };
  if (raw.type === 'lenet5') return { type: 'lenet5' };
  if (raw.type === 'graph') return buildTemplate(raw, search, fail);
  if (raw.hidden !== undefined) return { type: 'mlp', hidden: [...(raw.hidden as number[])] };
  const layers = (raw.layers as number | undefined) ?? 1;
  const units = (raw.hidden_units as number | undefined) ?? 256;
  return { type: 'mlp', hidden: Array.from({ length: layers }, () => units) };
}
