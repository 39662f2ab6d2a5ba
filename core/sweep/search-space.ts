import { parseAugment } from '../augment-spec';
import { parseLrDecay } from '../lr-schedule';
import { OPTIMIZER_KINDS } from '../optimizer-config';
import { MODE_FORMS, parseMode } from '../trial-spec';
import {
  COMPRESSION_FORMS,
  PULL_COMPRESSION_FORMS,
  parseCompression,
  parsePullCompression,
} from '../compression';
import { parseFreeze, parseLayerNames } from '../transfer';

/** Any value a YAML or JSON spec can hold; `choice` domains may list any of them. */
export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One trial's sampled hyper-parameters, keyed by their names under `search`. */
export type Hyper = Record<string, JsonValue>;

/**
 * How a numeric hyper-parameter is drawn from [low, high]:
 * - `uniform`: uniformly.
 * - `log_uniform`: uniformly in log(value); needs low > 0.
 * - `int`: a uniformly chosen integer.
 * - `int_log`: uniformly in log(value) over [low − ½, high + ½], rounded (Optuna's rule), so
 *   every integer gets the share of the log axis that rounds to it; needs low >= 1.
 * - `pow2`: a power of two in [low, high], the exponent a uniformly chosen integer; low >= 1.
 */
export const RANGE_KINDS = ['uniform', 'log_uniform', 'int', 'int_log', 'pow2'] as const;
export type RangeKind = (typeof RANGE_KINDS)[number];

export const DOMAIN_KINDS = [...RANGE_KINDS, 'choice'] as const;
export type DomainKind = (typeof DOMAIN_KINDS)[number];

export interface RangeDomain {
  kind: RangeKind;
  low: number;
  high: number;
}

/** One of a fixed list of values, each equally likely. */
export interface ChoiceDomain {
  kind: 'choice';
  values: JsonValue[];
}

export type SearchDomain = RangeDomain | ChoiceDomain;

/** Hyper-parameter name → domain, in the order the spec lists them. */
export type SearchSpace = Readonly<Record<string, SearchDomain>>;

/** Whether a range is searched on the log axis (and refined there). */
export function isLogKind(kind: RangeKind): boolean {
  return kind === 'log_uniform' || kind === 'int_log' || kind === 'pow2';
}

/** Whether a range yields only integers. */
export function isIntegerKind(kind: RangeKind): boolean {
  return kind === 'int' || kind === 'int_log' || kind === 'pow2';
}

/** The exponents e with 2^e in [low, high]; empty (first > last) when there is none. */
export function pow2Exponents(low: number, high: number): { first: number; last: number } {
  return { first: Math.ceil(Math.log2(low) - 1e-9), last: Math.floor(Math.log2(high) + 1e-9) };
}

/** Why [low, high] is not a valid range of `kind`, or undefined when it is. */
export function rangeShapeProblem(kind: RangeKind, low: number, high: number): string | undefined {
  if (!Number.isFinite(low) || !Number.isFinite(high)) return 'expected two finite numbers';
  if (isIntegerKind(kind) && kind !== 'pow2' && (!Number.isInteger(low) || !Number.isInteger(high)))
    return 'expected two integers, low <= high';
  if (kind === 'uniform' || kind === 'log_uniform') {
    if (!(low < high)) return 'expected two numbers, low < high';
  } else if (!(low <= high)) return 'expected two numbers, low <= high';
  if (kind === 'log_uniform' && !(low > 0)) return 'a log scale needs low > 0';
  if (kind === 'int_log' && !(low >= 1)) return 'a log scale of integers needs low >= 1';
  if (kind === 'pow2') {
    if (!(low >= 1)) return 'powers of two here are integers: low >= 1';
    const { first, last } = pow2Exponents(low, high);
    if (first > last) return `no power of two lies in [${low}, ${high}]`;
  }
  return undefined;
}

/** The value type a searchable setting takes, and where it lives in the spec. */
export type ParamRule =
  | {
      section: 'train' | 'model';
      type: 'real' | 'int';
      min: number;
      max: number;
      /** Whether `min` itself is excluded (lr > 0). */
      minOpen?: boolean;
      /** Whether `max` itself is excluded (beta1 < 1). */
      maxOpen?: boolean;
    }
  | {
      section: 'train';
      type: 'text';
      describe: string;
      check: (value: string) => boolean;
      /** Whether a non-negative integer stands for its text (freeze: 2 is freeze: "2"). */
      integers?: boolean;
    }
  | { section: 'train'; type: 'bool' }
  | { section: 'model'; type: 'hidden' };

const MAX_UNITS = 65_536;

/** A text setting's check from its parser: whatever the parser takes without throwing. */
function accepts(parse: (text: string) => unknown): (text: string) => boolean {
  return (text) => {
    try {
      parse(text);
      return true;
    } catch {
      return false;
    }
  };
}

/**
 * Every setting a sweep may fix (under `train` or `model`) and search (under `search`), with
 * the values it accepts. Limits match core/trial-spec and core/optimizer-config, so a value
 * accepted here is accepted when the trial is created.
 */
export const PARAM_RULES: Readonly<Record<string, ParamRule>> = {
  optimizer: {
    section: 'train',
    type: 'text',
    describe: `one of ${OPTIMIZER_KINDS.join(', ')}`,
    check: (v) => (OPTIMIZER_KINDS as readonly string[]).includes(v),
  },
  lr: { section: 'train', type: 'real', min: 0, max: Infinity, minOpen: true },
  batch: { section: 'train', type: 'int', min: 1, max: 65_536 },
  epochs: { section: 'train', type: 'int', min: 1, max: 100_000 },
  mode: {
    section: 'train',
    type: 'text',
    describe: `one of ${MODE_FORMS.join(', ')}`,
    check: accepts(parseMode),
  },
  lr_decay: {
    section: 'train',
    type: 'text',
    describe: 'none, inverse:k, step:gamma:n or exp:gamma',
    check: accepts((text) => parseLrDecay(text, 1)),
  },
  l2: { section: 'train', type: 'real', min: 0, max: Infinity },
  beta1: { section: 'train', type: 'real', min: 0, max: 1, maxOpen: true },
  beta2: { section: 'train', type: 'real', min: 0, max: 1, maxOpen: true },
  epsilon: { section: 'train', type: 'real', min: 0, max: Infinity, minOpen: true },
  momentum: { section: 'train', type: 'real', min: 0, max: 1, maxOpen: true },
  rho: { section: 'train', type: 'real', min: 0, max: 1, maxOpen: true },
  clip_norm: { section: 'train', type: 'real', min: 0, max: Infinity },
  augment: {
    section: 'train',
    type: 'text',
    describe:
      'none or a list of flip:h|v|hv, crop:PAD, shift:FRAC, rotate:DEG, shear:DEG, color:AMOUNT',
    check: accepts(parseAugment),
  },
  compress: {
    section: 'train',
    type: 'text',
    describe: `one of ${COMPRESSION_FORMS.join(', ')}`,
    check: accepts(parseCompression),
  },
  compress_pull: {
    section: 'train',
    type: 'text',
    describe: `one of ${PULL_COMPRESSION_FORMS.join(', ')}`,
    check: accepts(parsePullCompression),
  },
  overlap: { section: 'train', type: 'bool' },
  init_from: {
    section: 'train',
    type: 'text',
    describe: 'a trial id of the cluster or an exported model directory ("" for none)',
    check: () => true,
  },
  freeze: {
    section: 'train',
    type: 'text',
    describe: 'a count of layers (0 for none) or comma-separated layer names',
    check: accepts(parseFreeze),
    integers: true,
  },
  reinit: {
    section: 'train',
    type: 'text',
    describe: 'comma-separated layer names ("" for none)',
    check: accepts((text) => parseLayerNames(text, 'reinit')),
  },
  seed: { section: 'train', type: 'int', min: 0, max: 2 ** 31 - 1 },
  hidden: { section: 'model', type: 'hidden' },
  layers: { section: 'model', type: 'int', min: 1, max: 64 },
  hidden_units: { section: 'model', type: 'int', min: 1, max: MAX_UNITS },
};

export const SEARCHABLE_NAMES: readonly string[] = Object.keys(PARAM_RULES);
export const TRAIN_KEYS: readonly string[] = SEARCHABLE_NAMES.filter(
  (n) => PARAM_RULES[n].section === 'train',
);

export function isSearchable(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(PARAM_RULES, name);
}

function describeBounds(rule: { min: number; max: number; minOpen?: boolean; maxOpen?: boolean }) {
  if (rule.max === Infinity) return `${rule.minOpen ? '>' : '>='} ${rule.min}`;
  return `in ${rule.minOpen ? '(' : '['}${rule.min}, ${rule.max}${rule.maxOpen ? ')' : ']'}`;
}

/** What values `name` takes, in words ("an integer in [1, 65536]"). */
export function describeParam(name: string): string {
  const rule = PARAM_RULES[name];
  switch (rule.type) {
    case 'real':
      return `a number ${describeBounds(rule)}`;
    case 'int':
      return `an integer ${describeBounds(rule)}`;
    case 'text':
      return rule.describe;
    case 'bool':
      return 'true or false';
    case 'hidden':
      return `a non-empty list of layer widths (integers in [1, ${MAX_UNITS}]), e.g. [256, 128]`;
  }
}

function inBounds(
  rule: { min: number; max: number; minOpen?: boolean; maxOpen?: boolean },
  v: number,
): boolean {
  const aboveMin = rule.minOpen ? v > rule.min : v >= rule.min;
  const belowMax = rule.maxOpen ? v < rule.max : v <= rule.max;
  return Number.isFinite(v) && aboveMin && belowMax;
}

/** Why `value` is not a valid value of the setting `name`, or undefined when it is. */
export function paramValueProblem(name: string, value: unknown): string | undefined {
  const rule = PARAM_RULES[name];
  if (!rule) return `"${name}" is not a setting a sweep can search`;
  const bad = `${name} must be ${describeParam(name)}, got ${JSON.stringify(value)}`;
  switch (rule.type) {
    case 'real':
      return typeof value === 'number' && inBounds(rule, value) ? undefined : bad;
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) && inBounds(rule, value)
        ? undefined
        : bad;
    case 'text': {
      const text =
        rule.integers && Number.isInteger(value) && (value as number) >= 0 ? String(value) : value;
      return typeof text === 'string' && rule.check(text) ? undefined : bad;
    }
    case 'bool':
      return typeof value === 'boolean' ? undefined : bad;
    case 'hidden':
      return Array.isArray(value) &&
        value.length > 0 &&
        value.every((u) => Number.isInteger(u) && u >= 1 && u <= MAX_UNITS)
        ? undefined
        : bad;
  }
}

/**
 * Why `domain` cannot be searched for `name` (a range over text, a range reaching past the
 * setting's limits, a choice with a bad value), or undefined when it can. Assumes the domain's
 * own shape is valid (see rangeShapeProblem).
 */
export function domainProblem(name: string, domain: SearchDomain): string | undefined {
  const rule = PARAM_RULES[name];
  if (!rule) return `"${name}" is not a setting a sweep can search`;
  if (domain.kind === 'choice') {
    for (const value of domain.values) {
      const problem = paramValueProblem(name, value);
      if (problem) return problem;
    }
    return undefined;
  }
  if (rule.type === 'text' || rule.type === 'bool' || rule.type === 'hidden')
    return `${name} takes ${describeParam(name)}: search it with choice`;
  if (rule.type === 'int' && !isIntegerKind(domain.kind))
    return `${name} takes integers: search it with int, int_log, pow2 or choice`;
  if (!inBounds(rule, domain.low) || !inBounds(rule, domain.high))
    return `${name} must be ${describeParam(name)}; [${domain.low}, ${domain.high}] reaches outside`;
  return undefined;
}

/** A domain in the spec's own words, e.g. `log_uniform [0.0001, 0.01]`. */
export function describeDomain(domain: SearchDomain): string {
  if (domain.kind === 'choice') return `choice ${JSON.stringify(domain.values)}`;
  return `${domain.kind} [${domain.low}, ${domain.high}]`;
}

/** The values at a domain's edges: every choice, or both ends of a range. */
export function domainExtremes(domain: SearchDomain): JsonValue[] {
  if (domain.kind === 'choice') return domain.values;
  if (domain.kind !== 'pow2') return [domain.low, domain.high];
  const { first, last } = pow2Exponents(domain.low, domain.high);
  return [2 ** first, 2 ** last];
}
