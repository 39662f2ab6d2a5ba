import seedrandom from 'seedrandom';

/** A deterministic uniform [0, 1) generator: the same key always gives the same sequence. */
export type Uniform = () => number;

export function seededUniform(key: string | number): Uniform {
  const rng = seedrandom(String(key));
  return () => rng();
}

/**
 * The same for bulk draws, such as a model's initial weights: seedrandom's Alea draws several
 * times faster than its default ARC4, and every trial starts by drawing each initial value.
 */
export function bulkUniform(key: string): Uniform {
  const rng = seedrandom.alea(key);
  return () => rng();
}

/**
 * A stream of seeded draws that can pass over values without working them out: a shard drawing
 * its slices of a tensor walks the tensor's whole stream, and most of it belongs to other shards.
 */
export interface DrawStream {
  next(): number;
  /** Leaves the stream where `n` calls of next would, at the cost of the uniform draws alone. */
  skip(n: number): void;
}

export function uniformStream(uniform: Uniform): DrawStream {
  return {
    next: uniform,
    skip(n) {
      for (let i = 0; i < n; i++) uniform();
    },
  };
}

/** Standard normal samples by Box-Muller, from a seeded uniform source. */
export function normalStream(uniform: Uniform): DrawStream {
  let spare: number | undefined;
  const next = (): number => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  const skip = (n: number): void => {
    let left = n;
    if (left > 0 && spare !== undefined) {
      spare = undefined;
      left -= 1;
    }
    // A pair takes the same uniforms whether or not its two values are worked out.
    for (; left >= 2; left -= 2) {
      let u = 0;
      while (u === 0) u = uniform();
      uniform();
    }
    if (left === 1) next();
  };
  return { next, skip };
}

export function normalFrom(uniform: Uniform): () => number {
  return normalStream(uniform).next;
}

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, uniform: Uniform): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}
