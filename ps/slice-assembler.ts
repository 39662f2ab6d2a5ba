import type { TensorChunk__Output } from '../proto/gen/caviar/v1/TensorChunk';
import { InvalidArgumentError } from '../core/errors';
import { writeChunk, type ChunkTarget } from '../core/tensor-codec';
import { valueCodec, type ValueCodec } from '../core/value-codec';
import { RefusedInputError } from './refusal';
import { nativeLoops } from './native-loops';

/** A contiguous element range [start, start + length) of tensor `name`. */
export interface SliceRange {
  readonly name: string;
  readonly start: number;
  readonly length: number;
}

function describe(s: SliceRange): string {
  return `${s.name}[${s.start}, ${s.start + s.length})`;
}

/** Throws unless every range is well-formed and no two ranges of one tensor overlap. */
export function validateSliceRanges(slices: readonly SliceRange[]): void {
  const sorted = [...slices].sort((a, b) => a.name.localeCompare(b.name) || a.start - b.start);
  sorted.forEach((s, i) => {
    if (!s.name) throw new InvalidArgumentError('a slice has an empty tensor name');
    if (
      !Number.isSafeInteger(s.start) ||
      s.start < 0 ||
      !Number.isSafeInteger(s.length) ||
      s.length < 0
    ) {
      throw new InvalidArgumentError(`slice ${describe(s)} has a bad start or length`);
    }
    const prev = sorted[i - 1];
    if (prev && prev.name === s.name && prev.start + prev.length > s.start) {
      throw new InvalidArgumentError(`slices ${describe(prev)} and ${describe(s)} overlap`);
    }
  });
}

/**
 * Collects a stream of chunks into one buffer per slice and checks, before anyone uses them,
 * that every value is finite and every slice is covered exactly once. Nothing outside the
 * assembler is touched until `finish` returns, so a refused stream changes no state.
 */
export class SliceAssembler {
  readonly buffers: Float32Array[];
  private readonly byName = new Map<string, number[]>();
  private readonly covered: Array<Array<[number, number]>>;

  /**
   * `what` names the stream in error messages ("gradient", "initial values"). `buffers` (one per
   * slice, of its length, from a SliceBufferPool say) are used instead of fresh ones: their old
   * contents do not matter, since `finish` refuses a stream that leaves any element unwritten.
   * `codec` is how the chunks encode their values.
   */
  constructor(
    private readonly slices: readonly SliceRange[],
    private readonly what: string,
    buffers?: Float32Array[],
    private readonly codec: ValueCodec = valueCodec('f32'),
  ) {
    if (buffers && !slices.every((s, i) => buffers[i]?.length === s.length)) {
      throw new Error('SliceAssembler: the buffers given do not match the slices');
    }
    this.buffers = buffers ?? slices.map((s) => new Float32Array(s.length));
    this.covered = slices.map(() => []);
    slices.forEach((s, i) => this.byName.set(s.name, [...(this.byName.get(s.name) ?? []), i]));
  }

  add(chunk: TensorChunk__Output): void {
    let index = -1;
    const resolve = (name: string, offset: number): ChunkTarget | undefined => {
      index = this.sliceAt(name, offset);
      return index < 0
        ? undefined
        : { array: this.buffers[index], start: this.slices[index].start };
    };
    let written: number;
    try {
      written = writeChunk(chunk, resolve, this.codec);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new RefusedInputError('bad_shape', `${this.what}: ${message}`, { cause: err });
    }
    if (written === 0) return;
    const at = chunk.offset - this.slices[index].start;
    this.checkFinite(chunk.name, this.buffers[index], at, written, chunk.offset);
    this.covered[index].push([at, at + written]);
  }

  /** The buffers, aligned with the slices, once every slice is covered exactly. */
  finish(): Float32Array[] {
    this.slices.forEach((s, i) => this.checkCoverage(s, this.covered[i]));
    return this.buffers;
  }

  private sliceAt(name: string, offset: number): number {
    for (const i of this.byName.get(name) ?? []) {
      const { start, length } = this.slices[i];
      if (offset >= start && (offset < start + length || (length === 0 && offset === start)))
        return i;
    }
    return -1;
  }

  private checkFinite(
    name: string,
    buf: Float32Array,
    at: number,
    n: number,
    offset: number,
  ): void {
    const k = firstNonFinite(buf, at, n);
    if (k < 0) return;
    throw new RefusedInputError(
      'non_finite',
      `${this.what} for tensor ${name} has a non-finite value (${buf[k]}) at element ${offset + k - at}`,
    );
  }

  private checkCoverage(s: SliceRange, ranges: Array<[number, number]>): void {
    ranges.sort((a, b) => a[0] - b[0]);
    let end = 0;
    for (const [from, to] of ranges) {
      if (from < end) {
        throw new RefusedInputError(
          'bad_shape',
          `${this.what} for ${describe(s)}: element ${s.start + from} sent twice`,
        );
      }
      if (from > end) break;
      end = to;
    }
    if (end !== s.length) {
      throw new RefusedInputError(
        'bad_shape',
        `${this.what} for ${describe(s)}: elements from ${s.start + end} are missing`,
      );
    }
  }
}

/**
 * Spare buffer sets (one Float32Array per slice) for one trial's slices. A chunk-stream push and
 * a small trial's chunk pull need a model-sized scratch copy for a few milliseconds (same-host
 * calls and large trials' pulls do not); taking it from here instead of
 * allocating it keeps large short-lived buffers away from the GC, which otherwise runs a full
 * collection every few dozen calls for the external memory alone.
 */
export class SliceBufferPool {
  private readonly spare: Float32Array[][] = [];
  private readonly maxSpare: number;

  /** Keeps at most `maxSpareBytes` of spare sets (always at most 4). Defaults to 64 MB. */
  constructor(
    private readonly slices: readonly SliceRange[],
    maxSpareBytes = 64 << 20,
  ) {
    const setBytes = slices.reduce((n, s) => n + s.length * 4, 0);
    this.maxSpare = Math.min(4, Math.floor(maxSpareBytes / Math.max(1, setBytes)));
  }

  /** A set of buffers shaped like the slices; their contents are arbitrary. */
  take(): Float32Array[] {
    return this.spare.pop() ?? this.slices.map((s) => new Float32Array(s.length));
  }

  /** Hands a set back once nothing reads or writes it any more. */
  give(buffers: Float32Array[]): void {
    if (this.spare.length < this.maxSpare) this.spare.push(buffers);
  }
}

/** The index of the first NaN or ±Infinity in values[start, start + count), or -1. */
export function firstNonFinite(values: Float32Array, start: number, count: number): number {
  const native = nativeLoops();
  if (native) return native.firstNonFinite(values, start, count);
  for (let k = start; k < start + count; k++) if (!Number.isFinite(values[k])) return k;
  return -1;
}
