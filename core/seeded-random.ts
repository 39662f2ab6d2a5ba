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

/** 32-bit FNV-1a of `text` from `basis`: two bases give two independent words of a key. */
function fnv1a(text: string, basis: number): number {
  let hash = basis;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** splitmix32's step: spreads a seed word over a generator's state. */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Fills `out` with a seeded stream of uniform 32-bit words, for what is drawn per element on
 * every training step (dropout masks): several times as fast as seedrandom's Alea, whose draws
 * are doubles made one call at a time. The key's 64 bits of hash seed it, so two keys give the
 * same stream only by a 2^-64 chance.
 */
export function seededBits(key: string, out: Uint32Array): Uint32Array {
  const a = fnv1a(key, 0x811c9dc5);
  const b = fnv1a(key, 0x050c5d1f);
  const state = Uint32Array.of(
    splitmix32(a),
    splitmix32(b),
    splitmix32(a ^ 0x6a09e667),
    splitmix32(b ^ 0xbb67ae85),
  );
  if (state.every((w) => w === 0)) state[0] = 1;
  return xoshiro128StarStar(state, out);
}

/** xoshiro128** (Blackman and Vigna) from `state` (four words, not all zero) into `out`. */
export function xoshiro128StarStar(state: Uint32Array, out: Uint32Array): Uint32Array {
  // Locals rather than the array: the loop then keeps them in registers.
  let s0 = state[0] | 0;
  let s1 = state[1] | 0;
  let s2 = state[2] | 0;
  let s3 = state[3] | 0;
  for (let i = 0; i < out.length; i++) {
    const x = Math.imul(s1, 5);
    out[i] = Math.imul((x << 7) | (x >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
  }
  return out;
}
