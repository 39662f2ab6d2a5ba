/** `--backend` values; `auto` takes the fastest that loads (DESIGN.md's order). */
export const BACKEND_CHOICES = ['auto', 'gpu', 'node', 'blas', 'wasm', 'cpu', 'synthetic'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
