import seedrandom from 'seedrandom';

/** A deterministic uniform [0, 1) generator: the same key always gives the same sequence. */
export type Uniform = () => number;

export function seededUniform(key: string | number): Uniform {
  const rng = seedrandom(String(key));
  return () => rng();
}

/**
 * The same for bulk draws, such as a model's initial weights: seedrandom's Alea takes about a
 * quarter of the time of its default ARC4 (10 against 42 ns a number here), which made the initial
 * values of a 200k-parameter MLP cost 20-50 ms at the start of every trial.
 */
export function bulkUniform(key: string): Uniform {
  const rng = seedrandom.alea(key);
  return () => rng();
}

/** Standard normal samples by Box-Muller, from a seeded uniform source. */
export function normalFrom(uniform: Uniform): () => number {
  let spare: number | undefined;
  return () => {
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
