import { InvalidArgumentError } from 'commander';

export function parseIntIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}, got "${value}"`);
    }
    return n;
  };
}

export function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
}

export function parseNonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`expected a non-negative number, got "${value}"`);
  return n;
}

/** `HxW`, e.g. `64x64`, each side in 1..4096. */
export function parseImageSize(value: string): [number, number] {
  const m = /^\s*(\d+)x(\d+)\s*$/.exec(value);
  const size = m ? [Number(m[1]), Number(m[2])] : [];
  if (size.length !== 2 || size.some((n) => n < 1 || n > 4096))
    throw new InvalidArgumentError(`expected HEIGHTxWIDTH, each in 1..4096, got "${value}"`);
  return size as [number, number];
}
