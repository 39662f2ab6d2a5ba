import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import { z } from 'zod';
import { InvalidArgumentError } from './errors';
import { positionOf, type SourcePosition } from './source-positions';

/**
 * What the spec files a user writes (a sweep spec, a model spec) share: YAML or JSON checked by
 * a zod schema, every problem reported as `FILE:LINE:COL: FIELD: WHAT`.
 */

/** One thing wrong with a spec, located in its file. */
export interface SpecProblem extends SourcePosition {
  /** The field's path, e.g. `search.lr.log_uniform` or `layers[2].kernel`. */
  field: string;
  message: string;
}

/** A spec that cannot be used; `message` is the first problem as `FILE:LINE:COL: FIELD: WHAT`. */
export class SpecFileError extends InvalidArgumentError {
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

export function fieldName(segments: readonly PropertyKey[]): string {
  return segments
    .map((s, i) => (typeof s === 'number' ? `[${s}]` : `${i === 0 ? '' : '.'}${String(s)}`))
    .join('');
}

/** Marks an issue that should point at a mapping's key rather than its value. */
export const AT_KEY = { at: 'key' } as const;

/** A strict object: an unknown key is an error that lists the known ones. */
export function strict<S extends z.ZodRawShape>(shape: S) {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys' ? `unknown key; expected one of ${known}` : undefined,
  });
}

function expectedWords(expected: string): string {
  const words: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
  };
  return words[expected] ?? expected;
}

function describeInput(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

/** Plain-words messages for zod's generic issues; schema-specific messages take precedence. */
export const specErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined
        ? `required (${expectedWords(iss.expected)})`
        : `expected ${expectedWords(iss.expected)}, got ${describeInput(iss.input)}`;
    case 'invalid_value':
      return `expected ${iss.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${describeInput(iss.input)}`;
    case 'invalid_union': {
      if (!('discriminator' in iss) || !iss.discriminator || !('options' in iss)) return undefined;
      const given = (iss.input as Record<string, unknown> | undefined)?.[iss.discriminator];
      const options = ((iss.options ?? []) as unknown[]).map(String).join(', ');
      return given === undefined
        ? `required: one of ${options}`
        : `expected one of ${options}, got ${describeInput(given)}`;
    }
    case 'too_small':
      return iss.origin === 'string' ? 'expected a non-empty string' : undefined;
    default:
      return undefined;
  }
};

/** Where a field (or, with 'key', its key) sits in the file. */
export type Locate = (at: readonly PropertyKey[], kind?: 'key' | 'value') => SourcePosition;

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

/** Problems sorted in file order, as `make` and compilers list them. */
export function inFileOrder(problems: SpecProblem[]): SpecProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.col - b.col);
}

/**
 * Parses `text` as YAML (JSON is YAML) and checks it against `schema`. Throws a SpecFileError
 * made by `fail` (so each kind of spec keeps its own error class) for a syntax error, an empty
 * file (`empty` says what was expected) or any schema issue. Returns the data and a locator for
 * checks the schema cannot make.
 */
export function parseSpecText<T>(
  text: string,
  source: string,
  schema: z.ZodType<T>,
  empty: string,
  fail: (source: string, problems: SpecProblem[]) => SpecFileError,
): { data: T; locate: Locate } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0)
    throw fail(
      source,
      doc.errors.map((e) => syntaxProblem(e, lines)),
    );
  if (doc.contents === null) throw fail(source, [{ line: 1, col: 1, field: '', message: empty }]);
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const locate: Locate = (at, kind = 'value') => positionOf(doc, lines, at, kind);
  const result = schema.safeParse(data, { error: specErrorMap });
  if (!result.success)
    throw fail(source, inFileOrder(result.error.issues.flatMap((i) => issueProblems(i, locate))));
  return { data: result.data, locate };
}
