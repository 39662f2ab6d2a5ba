import { sliceElements } from '../core/placement';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { CaviarError } from '../core/errors';
import {
  SEGMENT_TOKEN_BYTES,
  isSegmentName,
  sliceLayout,
  writeArraysInPieces,
} from '../core/shared-segment';
import type { SegmentRegion__Output } from '../proto/gen/caviar/v1/SegmentRegion';
import type { AttachReply } from '../proto/gen/caviar/v1/AttachReply';
import { RefusedInputError } from './refusal';
import { SegmentGradient } from './segment-gradient';
import type { SliceRange } from './slice-assembler';

export interface AttachedSegmentsOptions {
  /** Segments kept open at most; the least recently used is closed first. Defaults to 256. */
  maxOpen?: number;
  /** A segment unused this long is closed at the next Attach (its worker has likely gone). Defaults to 60 s. */
  idleMs?: number;
}

interface Entry {
  fd: number;
  lastUsed: number;
}

/**
 * The shared-memory segments workers on this machine attached (see core/shared-segment.ts): open
 * files found by name, read from and written to at the regions pushes and pulls name. Opening a
 * file needs its token, so a sender can only name files it created itself.
 */
export class AttachedSegments {
  private readonly open = new Map<string, Entry>();
  private readonly maxOpen: number;
  private readonly idleMs: number;
  /** Per slice list (one per trial on this shard): its layout hash. */
  private readonly layouts = new WeakMap<readonly SliceRange[], number>();

  constructor(
    private readonly dir: string | undefined,
    private readonly shard: string,
    options: AttachedSegmentsOptions = {},
  ) {
    this.maxOpen = options.maxOpen ?? 256;
    this.idleMs = options.idleMs ?? 60_000;
  }

  attach(name: string, token: Uint8Array): AttachReply {
    if (!this.dir) return { attached: false, reason: `shard ${this.shard} has no shared memory` };
    if (!isSegmentName(name)) return { attached: false, reason: `"${name}" is not a segment name` };
    this.closeStale();
    const known = this.open.get(name);
    if (known) {
      known.lastUsed = Date.now();
      return { attached: true, reason: '' };
    }
    let fd: number;
    try {
      const { O_RDWR, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
      fd = fs.openSync(path.join(this.dir, name), O_RDWR | O_NOFOLLOW | O_NONBLOCK);
    } catch (err) {
      // Another machine (or container) with its own shared-memory folder: chunks it is.
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return { attached: false, reason: `segment ${name} cannot be opened here (${code})` };
    }
    // Only a plain file of this user's: a FIFO or device there would block or leak the shard.
    const stat = fs.fstatSync(fd);
    if (!stat.isFile() || (process.getuid && stat.uid !== process.getuid())) {
      fs.closeSync(fd);
      return { attached: false, reason: `segment ${name} is not a plain file of this user's` };
    }
    const head = Buffer.alloc(SEGMENT_TOKEN_BYTES);
    const read = fs.readSync(fd, head, 0, head.length, 0);
    if (read !== head.length || token.length !== head.length || !head.equals(token)) {
      fs.closeSync(fd);
      return { attached: false, reason: `segment ${name} does not begin with the token given` };
    }
    this.open.set(name, { fd, lastUsed: Date.now() });
    return { attached: true, reason: '' };
  }

  /** The gradient in the region (aligned with `slices`); refuses a region that does not fit. */
  gradient(region: SegmentRegion__Output, slices: readonly SliceRange[]): SegmentGradient {
    return new SegmentGradient(this.checked(region, slices), region.offset, slices);
  }

  /** Writes `values` (aligned with `slices`) into the region, pausing (a yield) between pieces. */
  *write(
    region: SegmentRegion__Output,
    slices: readonly SliceRange[],
    values: readonly Float32Array[],
  ): Generator<void> {
    yield* writeArraysInPieces(this.checked(region, slices), region.offset, values);
  }

  close(): void {
    for (const { fd } of this.open.values()) fs.closeSync(fd);
    this.open.clear();
  }

  private checked(region: SegmentRegion__Output, slices: readonly SliceRange[]): number {
    const entry = this.open.get(region.segment);
    if (!entry) {
      // The shard restarted, or closed it as idle: UNAVAILABLE, so the worker retries, and its
      // client attaches a new segment first.
      throw new CaviarError(
        status.UNAVAILABLE,
        `segment ${region.segment} is not attached to shard ${this.shard}`,
      );
    }
    entry.lastUsed = Date.now();
    const elements = sliceElements(slices);
    if (region.elements !== elements) {
      throw new RefusedInputError(
        'bad_shape',
        `segment region holds ${region.elements} values; the trial has ${elements} here`,
      );
    }
    if (region.layout !== this.layoutOf(slices)) {
      throw new RefusedInputError(
        'bad_shape',
        'segment region lays out the slices differently from the shard (another placement)',
      );
    }
    return entry.fd;
  }

  private layoutOf(slices: readonly SliceRange[]): number {
    let layout = this.layouts.get(slices);
    if (layout === undefined) {
      layout = sliceLayout(slices);
      this.layouts.set(slices, layout);
    }
    return layout;
  }

  private closeStale(): void {
    const now = Date.now();
    for (const [name, entry] of this.open) {
      if (now - entry.lastUsed > this.idleMs) {
        fs.closeSync(entry.fd);
        this.open.delete(name);
      }
    }
    while (this.open.size >= this.maxOpen) {
      const [name, entry] = [...this.open].reduce((a, b) =>
        b[1].lastUsed < a[1].lastUsed ? b : a,
      );
      fs.closeSync(entry.fd);
      this.open.delete(name);
    }
  }
}
