import * as fs from 'node:fs';
import { RefusedInputError } from './refusal';
import { firstNonFinite, type SliceRange } from './slice-assembler';
import { GRADIENT_PIECE, pieces, type Gradient } from './trial-shard';

/** One scratch piece for every segment gradient: they are read synchronously, one at a time. */
const scratch = new Float32Array(GRADIENT_PIECE);
const scratchBytes = new Uint8Array(scratch.buffer);

/**
 * A gradient in a same-host worker's segment region (its slices back to back, as float32), read
 * a piece at a time into one scratch buffer instead of copied whole. The worker leaves the
 * region alone until the shard answers, so `check` and the apply after it read the same values.
 */
export class SegmentGradient implements Gradient {
  private readonly starts: number[] = [];

  constructor(
    private readonly fd: number,
    private readonly offset: number,
    private readonly slices: readonly SliceRange[],
  ) {
    let at = 0;
    for (const s of slices) {
      this.starts.push(at);
      at += s.length;
    }
  }

  piece(i: number, from: number, to: number): Float32Array {
    const bytes = (to - from) * 4;
    const position = this.offset + (this.starts[i] + from) * 4;
    for (let done = 0; done < bytes;) {
      const n = fs.readSync(this.fd, scratchBytes, done, bytes - done, position + done);
      if (n === 0)
        throw new RefusedInputError('bad_shape', `the segment ends before its region does`);
      done += n;
    }
    return scratch.subarray(0, to - from);
  }

  /**
   * Refuses (before anything applies) a gradient with a NaN or an infinity, naming the element;
   * pauses (a yield) after every piece.
   */
  *check(what: string): Generator<void> {
    for (const [i, s] of this.slices.entries()) {
      for (const [from, to] of pieces(s.length)) {
        const values = this.piece(i, from, to);
        const k = firstNonFinite(values, 0, to - from);
        if (k >= 0)
          throw new RefusedInputError(
            'non_finite',
            `${what} for tensor ${s.name} has a non-finite value (${values[k]}) at element ${s.start + from + k}`,
          );
        yield;
      }
    }
  }
}
