import { status } from '@grpc/grpc-js';
import { errorMessage } from './errors';
import type { AttachReply__Output } from '../proto/gen/caviar/v1/AttachReply';
import type { SegmentRegion } from '../proto/gen/caviar/v1/SegmentRegion';
import { sliceElements, sliceViews, type Slice } from './placement';
import {
  SharedSegment,
  readArraysInPieces,
  sliceLayout,
  writeArraysInPieces,
} from './shared-segment';
import { runYielding } from './yielding';

/** A region lent to one call: the values to send go in before it, the answer comes out after. */
export interface LentRegion {
  readonly region: SegmentRegion;
  /**
   * Copies the slices of the full tensors in `values` into the region, in slice order; a
   * RangeError when a tensor is missing or too short. In 8 MB pieces with the event loop free
   * between them, as `get` is: nothing may change the arrays until it resolves.
   */
  put(values: ReadonlyMap<string, Float32Array>): Promise<void>;
  /** Copies the region into the slices of the full tensors in `into`. */
  get(into: Map<string, Float32Array>): Promise<void>;
  /**
   * Gives the region back. `reuse` false drops the whole segment (a call whose outcome is unknown: the
   * shard may still write to the region), and the next call attaches a new one.
   */
  end(reuse: boolean): void;
}

export type AttachCall = (segment: string, token: Buffer) => Promise<AttachReply__Output>;

/**
 * One client's same-host path to one shard: a segment it created and the shard attached, or
 * the knowledge that the shard cannot attach one (another machine, an older shard), in which
 * case every call streams chunks. A segment is replaced after a call whose outcome is unknown
 * (the shard may still write to its region).
 */
export class SegmentLink {
  private segment: SharedSegment | undefined;
  private attaching: Promise<void> | undefined;
  /** Why the shard refused, once it has: calls stream chunks from then on. */
  private refusal: string | undefined;

  constructor(
    private readonly dir: string,
    private readonly attach: AttachCall,
  ) {}

  /** "segment", or "chunks (why)" once the shard has refused to attach. */
  get transport(): string {
    return this.refusal === undefined ? 'segment' : `chunks (${this.refusal})`;
  }

  /** A region for the values of `slices`, or undefined when this call must stream chunks. */
  async lendRegion(slices: readonly Slice[]): Promise<LentRegion | undefined> {
    const segment = await this.attached();
    if (!segment) return undefined;
    const elements = sliceElements(slices);
    let offset: number;
    try {
      offset = await segment.take(elements * 4);
    } catch (err) {
      this.refusal = `cannot grow the segment: ${errorMessage(err)}`;
      this.drop();
      return undefined;
    }
    const region = { segment: segment.name, offset, elements, layout: sliceLayout(slices) };
    return {
      region,
      put: async (values) =>
        runYielding(writeArraysInPieces(segment.fd, offset, sliceViews(slices, values))),
      get: async (into) =>
        runYielding(readArraysInPieces(segment.fd, offset, sliceViews(slices, into))),
      end: (reuse) => {
        if (reuse) segment.give(offset);
        else if (this.segment === segment) this.drop();
      },
    };
  }

  /**
   * The attached segment, attaching one first if there is none (yet): undefined when calls must
   * stream chunks. Never rejects.
   */
  async attached(): Promise<SharedSegment | undefined> {
    if (this.refusal !== undefined) return undefined;
    if (!this.segment) {
      this.attaching ??= this.open().finally(() => (this.attaching = undefined));
      await this.attaching;
    }
    return this.segment;
  }

  close(): void {
    this.drop();
    this.refusal ??= 'closed';
  }

  private drop(): void {
    this.segment?.close();
    this.segment = undefined;
  }

  /** Creates a segment and has the shard attach it; leaves none (this call streams chunks) if not. */
  private async open(): Promise<void> {
    let segment: SharedSegment;
    try {
      segment = SharedSegment.create(this.dir);
    } catch (err) {
      this.refusal = `cannot create a segment in ${this.dir}: ${errorMessage(err)}`;
      return;
    }
    try {
      const reply = await this.attach(segment.name, segment.token);
      if (!reply.attached) {
        this.refusal = reply.reason || 'refused';
        segment.close();
        return;
      }
      // Its name is no longer needed: the memory goes with the last of the two processes.
      segment.unlink();
      if (this.refusal !== undefined)
        segment.close(); // closed while the shard answered
      else this.segment = segment;
    } catch (err) {
      segment.close();
      // A shard from before same-host transfer has no Attach. Anything else may pass (the shard
      // restarting): this call streams chunks, and the next one tries again.
      if ((err as { code?: unknown }).code === status.UNIMPLEMENTED)
        this.refusal = 'the shard has no Attach';
    }
  }
}
