import { compareMetric, type Direction } from './metrics';
import {
  isIntegerKind,
  isLogKind,
  type ChoiceDomain,
  type Hyper,
  type RangeDomain,
  type SearchDomain,
  type SearchSpace,
} from './search-space';

/** A finished trial of the previous round: what it was given and how it did. */
export interface ScoredTrial {
  hyper: Hyper;
  /** The optimizing metric; a non-finite score (failed, infeasible) never leads. */
  score: number;
}

export interface RefineOptions {
  /** Widening on each side, as a share of the leaders' span (in the range's scale). Defaults to 0.25. */
  margin?: number;
  /**
   * The least widening on each side, as a share of the previous range's width, so that one
   * leader (or several with one value) still leaves room to search. Defaults to 0.1.
   */
  minMargin?: number;
}

const DEFAULT_MARGIN = 0.25;
const DEFAULT_MIN_MARGIN = 0.1;

function refineRange(
  domain: RangeDomain,
  values: number[],
  options: Required<RefineOptions>,
): RangeDomain {
  const log = isLogKind(domain.kind);
  const to = log ? Math.log : (v: number) => v;
  const from = log ? Math.exp : (v: number) => v;
  const lowest = Math.min(...values);
  const highest = Math.max(...values);
  const span = to(highest) - to(lowest);
  const width = to(domain.high) - to(domain.low);
  const margin = Math.max(options.margin * span, options.minMargin * width);
  // The leaders are put back in explicitly: exp(log(v)) need not be v to the last bit.
  let low = Math.min(from(to(lowest) - margin), lowest);
  let high = Math.max(from(to(highest) + margin), highest);
  if (domain.kind === 'pow2') {
    low = 2 ** Math.round(Math.log2(low));
    high = 2 ** Math.round(Math.log2(high));
  } else if (isIntegerKind(domain.kind)) {
    // Rounding is monotone and keeps integers, so integer leaders stay inside.
    low = Math.round(low);
    high = Math.round(high);
  }
  return {
    kind: domain.kind,
    low: Math.max(domain.low, Math.min(low, domain.high)),
    high: Math.min(domain.high, Math.max(high, domain.low)),
  };
}

function refineChoice(domain: ChoiceDomain, used: unknown[]): ChoiceDomain {
  const keys = new Set(used.map((v) => JSON.stringify(v)));
  const values = domain.values.filter((v) => keys.has(JSON.stringify(v)));
  return values.length > 0 ? { kind: 'choice', values } : domain;
}

/** The `top` best trials by score (ties: the earlier one), finite scores only. */
export function leaders<T extends ScoredTrial>(
  results: readonly T[],
  top: number,
  direction: Direction,
): T[] {
  return results
    .filter((r) => Number.isFinite(r.score))
    .map((r, i) => ({ r, i }))
    .sort((a, b) => compareMetric(a.r.score, b.r.score, direction) || a.i - b.i)
    .slice(0, Math.max(0, top))
    .map(({ r }) => r);
}

/**
 * Coarse to fine: narrows each domain around the `top` best trials. A range becomes the span of
 * the leaders' values (on the log axis for log_uniform, int_log and pow2), widened on each side
 * by max(margin × span, minMargin × previous width), rounded for integer kinds, and clamped
 * inside the previous range; a choice keeps the values the leaders used. Laws: each refined
 * domain lies inside the previous one and holds every leader's value that the previous one
 * held. A domain no leader has a value for is kept as it was; with no leaders, so is the space.
 */
export function refineSpace(
  space: SearchSpace,
  results: readonly ScoredTrial[],
  top: number,
  direction: Direction,
  options: RefineOptions = {},
): SearchSpace {
  const opts = {
    margin: options.margin ?? DEFAULT_MARGIN,
    minMargin: options.minMargin ?? DEFAULT_MIN_MARGIN,
  };
  const best = leaders(results, top, direction);
  const refined: Record<string, SearchDomain> = {};
  for (const [name, domain] of Object.entries(space)) {
    const used = best.map((r) => r.hyper[name]).filter((v) => v !== undefined);
    if (domain.kind === 'choice') {
      refined[name] = refineChoice(domain, used);
      continue;
    }
    // A value outside the range (set by hand, or from an older space) says nothing about it.
    const values = used.filter(
      (v): v is number => typeof v === 'number' && v >= domain.low && v <= domain.high,
    );
    refined[name] = values.length > 0 ? refineRange(domain, values, opts) : { ...domain };
  }
  return refined;
}
