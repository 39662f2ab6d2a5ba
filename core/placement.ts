/** A tensor of the model, by name and shape (row-major). */
export interface TensorShape {
  name: string;
  shape: readonly number[];
}

/** One contiguous element range of a tensor, owned by one shard. */
export interface Slice {
  name: string;
  /** First element (flat, row-major) of the range. */
  start: number;
  length: number;
  shard: number;
}

export interface PlacementOptions {
  /** Tensors with more elements than this are split into row ranges. Defaults to 65,536 (256 KB of float32), so a model whose bulk is one layer still spreads over every shard. */
  splitThreshold?: number;
}

export const DEFAULT_SPLIT_THRESHOLD = 65_536;

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Elements the slices (ranges) cover together. */
export function sliceElements(slices: ReadonlyArray<{ length: number }>): number {
  return slices.reduce((n, s) => n + s.length, 0);
}

/** Row ranges of a large tensor: about `pieces` ranges, each a whole number of rows. */
function rowRanges(shape: readonly number[], pieces: number): Array<[number, number]> {
  const rows = shape.length === 0 ? 1 : shape[0];
  const rowSize = rows === 0 ? 0 : elementCount(shape) / rows;
  const n = Math.max(1, Math.min(rows, pieces));
  const ranges: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const r0 = Math.floor((i * rows) / n);
    const r1 = Math.floor(((i + 1) * rows) / n);
    if (r1 > r0) ranges.push([r0 * rowSize, (r1 - r0) * rowSize]);
  }
  return ranges;
}

/**
 * Places tensors on `shards` shards. A pure function of (shapes, shard count, threshold), so the
 * coordinator, every worker and every shard compute the same map without talking.
 *
 * Tensors above the threshold are split into row ranges (at least one per shard, at most one per
 * threshold's worth of elements) and every piece goes, largest first, to the least-loaded shard
 * (ties to the lowest index).
 */
export function placeTensors(
  tensors: readonly TensorShape[],
  shards: number,
  options: PlacementOptions = {},
): Slice[] {
  if (!Number.isInteger(shards) || shards < 1)
    throw new RangeError(`shard count must be a positive integer, got ${shards}`);
  const threshold = options.splitThreshold ?? DEFAULT_SPLIT_THRESHOLD;
  const pieces: Array<Omit<Slice, 'shard'>> = [];
  for (const t of tensors) {
    const size = elementCount(t.shape);
    if (size > threshold && shards > 1) {
      const count = Math.max(shards, Math.ceil(size / threshold));
      for (const [start, length] of rowRanges(t.shape, count))
        pieces.push({ name: t.name, start, length });
    } else {
      pieces.push({ name: t.name, start: 0, length: size });
    }
  }
  // Stable order: by size descending, then by name and start, so ties never depend on input order.
  pieces.sort((a, b) => b.length - a.length || a.name.localeCompare(b.name) || a.start - b.start);
  const load = new Array<number>(shards).fill(0);
  const placed: Slice[] = [];
  for (const piece of pieces) {
    let best = 0;
    for (let s = 1; s < shards; s++) if (load[s] < load[best]) best = s;
    load[best] += piece.length;
    placed.push({ ...piece, shard: best });
  }
  return placed.sort((a, b) => a.name.localeCompare(b.name) || a.start - b.start);
}

/** The slices owned by one shard. */
export function slicesOnShard(slices: readonly Slice[], shard: number): Slice[] {
  return slices.filter((s) => s.shard === shard);
}

/**
 * Each slice's range of its full tensor in `values`, in slice order (views, not copies); a
 * RangeError when a tensor is missing or shorter than its slice.
 */
export function sliceViews(
  slices: readonly Omit<Slice, 'shard'>[],
  values: ReadonlyMap<string, Float32Array>,
): Float32Array[] {
  return slices.map((s) => {
    const full = values.get(s.name);
    if (!full || full.length < s.start + s.length) {
      throw new RangeError(
        `tensor ${s.name} is missing or shorter than slice [${s.start}, ${s.start + s.length})`,
      );
    }
    return full.subarray(s.start, s.start + s.length);
  });
}
