import type { ParamInfo } from '../core/model-spec';

/** Tensors up to this size get an exact threshold; larger ones one estimated from a sample. */
const EXACT_LIMIT = 16_384;
/** Sampled magnitudes per large tensor: enough that its top ratio·m places the threshold well. */
const SAMPLES = 8_192;

/**
 * Top-k sparsification with error feedback, as BytePS's topk compressor under its
 * error_feedback wrapper and Deep Gradient Compression do it: each step, every trained tensor's
 * gradient plus what earlier steps left out of it is cut to its largest magnitudes, about
 * k = ceil(ratio·n) of them; the rest stays here and joins the next step's gradient, so every
 * part of the gradient reaches the shards, late rather than never. As in DGC, a large tensor's
 * threshold is the k-th largest of an evenly spread sample, so a step costs one pass over the
 * tensor rather than a selection over all of it. One residual per tensor, the model's size.
 */
export class TopKErrorFeedback {
  private readonly residuals = new Map<string, Float32Array>();
  private magnitudes = new Float32Array(0);

  constructor(
    readonly ratio: number,
    private readonly params: readonly ParamInfo[],
  ) {
    if (!(ratio > 0 && ratio <= 1)) throw new RangeError(`top-k ratio ${ratio} is not in (0, 1]`);
  }

  /**
   * Cuts each gradient of `grads` in place to the values, residual folded in, whose magnitude
   * reaches its tensor's threshold; BatchNorm's moving statistics, not gradients, pass whole.
   */
  sparsify(grads: ReadonlyMap<string, Float32Array>): void {
    for (const p of this.params) {
      const g = grads.get(p.name);
      if (!g || p.movingAverage !== undefined) continue;
      let residual = this.residuals.get(p.name);
      if (!residual) this.residuals.set(p.name, (residual = new Float32Array(g.length)));
      const threshold = this.threshold(g, residual);
      for (let i = 0; i < g.length; i++) {
        const v = g[i] + residual[i];
        // A zero threshold (fewer non-zero values than k) sends every non-zero one.
        if (Math.abs(v) >= threshold && v !== 0) {
          g[i] = v;
          residual[i] = 0;
        } else {
          g[i] = 0;
          residual[i] = v;
        }
      }
    }
  }

  /** What has not been pushed yet of tensor `name` (zeros before its first step). */
  residual(name: string): Float32Array | undefined {
    return this.residuals.get(name);
  }

  /** The k-th largest |g + residual|, of every value or of an evenly spread sample of them. */
  private threshold(g: Float32Array, residual: Float32Array): number {
    const n = g.length;
    const m = n <= EXACT_LIMIT ? n : SAMPLES;
    const k = Math.ceil(this.ratio * m);
    if (k >= m) return 0;
    if (this.magnitudes.length < m) this.magnitudes = new Float32Array(m);
    const a = this.magnitudes.subarray(0, m);
    const stride = n / m;
    for (let j = 0; j < m; j++) {
      const i = Math.floor(j * stride);
      a[j] = Math.abs(g[i] + residual[i]);
    }
    return kthLargest(a, k);
  }
}

/** The k-th largest value of `a` (reordered in place), by quickselect. */
function kthLargest(a: Float32Array, k: number): number {
  const target = a.length - k;
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    // Median of three as the pivot keeps sorted or constant runs from going quadratic.
    const mid = (lo + hi) >>> 1;
    const pivot = Math.max(Math.min(a[lo], a[mid]), Math.min(Math.max(a[lo], a[mid]), a[hi]));
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target];
}
