import { InvalidArgumentError } from './errors';

/** Learning rate as a function of the epoch (0-based). */
export type LrSchedule = (epoch: number) => number;

function positive(text: string, what: string, spec: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(
      `learning-rate decay "${spec}": ${what} must be a non-negative number`,
    );
  }
  return value;
}

/**
 * Parses a decay spec: "" or "none" (constant), `inverse:k` (η0 / (1 + k·epoch)),
 * `step:γ:n` (η0 · γ^floor(epoch / n)), `exp:γ` (η0 · γ^epoch).
 */
export function parseLrDecay(spec: string, lr0: number): LrSchedule {
  const parts = spec.trim() === '' ? ['none'] : spec.trim().split(':');
  switch (parts[0]) {
    case 'none':
      if (parts.length !== 1) break;
      return () => lr0;
    case 'inverse': {
      if (parts.length !== 2) break;
      const k = positive(parts[1], 'k', spec);
      return (epoch) => lr0 / (1 + k * epoch);
    }
    case 'step': {
      if (parts.length !== 3) break;
      const gamma = positive(parts[1], 'gamma', spec);
      const n = positive(parts[2], 'n', spec);
      if (!Number.isInteger(n) || n < 1)
        throw new InvalidArgumentError(
          `learning-rate decay "${spec}": n must be a positive integer`,
        );
      return (epoch) => lr0 * Math.pow(gamma, Math.floor(epoch / n));
    }
    case 'exp': {
      if (parts.length !== 2) break;
      const gamma = positive(parts[1], 'gamma', spec);
      return (epoch) => lr0 * Math.pow(gamma, epoch);
    }
  }
  throw new InvalidArgumentError(
    `learning-rate decay "${spec}" is not one of none, inverse:k, step:gamma:n, exp:gamma`,
  );
}
