/** `--backend` values; `auto` takes the fastest that loads (DESIGN.md's order). */
export const BACKEND_CHOICES = ['auto', 'gpu', 'node', 'blas', 'wasm', 'cpu', 'synthetic'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** `--compute-thread`: where a worker's models compute (worker/compute-thread.ts). */
export const COMPUTE_THREAD_CHOICES = ['auto', 'on', 'off'] as const;
export type ComputeThreadChoice = (typeof COMPUTE_THREAD_CHOICES)[number];
