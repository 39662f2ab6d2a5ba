/** Small statistics for repeated benchmark runs. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The index of the value closest to the median (the lower one on a tie): the run to show. */
export function medianIndex(values: readonly number[]): number {
  const m = median(values);
  let best = 0;
  values.forEach((v, i) => {
    if (Math.abs(v - m) < Math.abs(values[best] - m)) best = i;
  });
  return best;
}

/** The nearest-rank p-th percentile (0-100), or null for no values. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max − min) / median, 0 for a single run. */
  spread: number;
  runs: number[];
}

export function spreadOf(values: readonly number[], digits = 1): Spread {
  const m = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return {
    median: round(m, digits),
    min: round(min, digits),
    max: round(max, digits),
    spread: m > 0 ? round((max - min) / m, 3) : 0,
    runs: values.map((v) => round(v, digits)),
  };
}

export function round(x: number, digits: number): number {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x;
}
