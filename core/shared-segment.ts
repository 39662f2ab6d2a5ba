import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { runYielding } from './yielding';

/**
 * Same-host transfer: a worker and a shard on one machine pass tensor values through a file in
 * a shared-memory folder (tmpfs) instead of through gRPC chunks, and gRPC carries only the small
 * messages naming where the values are. It is what TensorPipe (PyTorch RPC) does between
 * processes of one machine. Each value is copied once per direction (pwrite, pread) where a
 * chunk stream copies it about five times (protobuf, gRPC framing, HTTP/2, socket, reassembly).
 */

/** The folder both ends use; "off" (or empty) turns same-host transfer off. */
export const SHARED_MEMORY_ENV = 'CAVIAR_SHM_DIR';
const DEFAULT_SHARED_MEMORY_DIR = '/dev/shm';

/** A segment starts with this many random bytes that only its creator knows. */
export const SEGMENT_TOKEN_BYTES = 16;
/** Regions start at multiples of this (a cache line), after the token. */
const REGION_ALIGN = 64;

const SEGMENT_NAME = /^caviar-[0-9a-f]{32}$/;

/** The shared-memory folder, or undefined when same-host transfer is off or the folder is missing. */
export function sharedMemoryDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = env[SHARED_MEMORY_ENV] ?? DEFAULT_SHARED_MEMORY_DIR;
  if (dir === '' || dir === 'off') return undefined;
  try {
    return fs.statSync(dir).isDirectory() ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `name` is a segment name (so a shard opens nothing else, and nothing outside its folder). */
export function isSegmentName(name: string): boolean {
  return SEGMENT_NAME.test(name);
}

/** FNV-1a (32 bits) of the slices' "name:start:length;" list, in order. */
export function sliceLayout(
  slices: readonly { name: string; start: number; length: number }[],
): number {
  let hash = 0x811c9dc5;
  const text = slices.map((s) => `${s.name}:${s.start}:${s.length};`).join('');
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Bytes a piecewise read or write moves between pauses. */
const PIECE_BYTES = 8 << 20;

/**
 * Writes `arrays` back to back from byte `position` of `fd`, pausing (a yield) after every 8 MB,
 * so a caller can let its event loop run between pieces of a model-sized write (the first into
 * a fresh region also takes its pages).
 */
export function* writeArraysInPieces(
  fd: number,
  position: number,
  arrays: readonly Float32Array[],
): Generator<void> {
  let at = position;
  for (const values of arrays) {
    const bytes = bytesOf(values);
    let done = 0;
    while (done < bytes.byteLength) {
      const n = Math.min(PIECE_BYTES, bytes.byteLength - done);
      done += fs.writeSync(fd, bytes, done, n, at + done);
      yield;
    }
    at += bytes.byteLength;
  }
}

/**
 * Fills `arrays` from the bytes back to back from `position` of `fd`, pausing after every 8 MB;
 * throws on a short file.
 */
export function* readArraysInPieces(
  fd: number,
  position: number,
  arrays: readonly Float32Array[],
): Generator<void> {
  let at = position;
  for (const values of arrays) {
    const bytes = bytesOf(values);
    let done = 0;
    while (done < bytes.byteLength) {
      const n = fs.readSync(
        fd,
        bytes,
        done,
        Math.min(PIECE_BYTES, bytes.byteLength - done),
        at + done,
      );
      if (n === 0) {
        throw new RangeError(`the segment ends at byte ${at + done}, before the region does`);
      }
      done += n;
      yield;
    }
    at += bytes.byteLength;
  }
}

/** A region of a segment handed to one call. */
interface Slot {
  offset: number;
  bytes: number;
  busy: boolean;
}

/**
 * A shared-memory file this process created, cut into regions, one per call in flight. The file
 * is unlinked as soon as the shard has opened it, so it goes away with the last process holding
 * it, however they end (a shard closes a segment unused for a minute at its next Attach).
 */
export class SharedSegment {
  private readonly slots: Slot[] = [];
  private end = REGION_ALIGN;
  private closed = false;

  private constructor(
    readonly name: string,
    readonly token: Buffer,
    readonly fd: number,
    private readonly file: string,
  ) {}

  static create(dir: string): SharedSegment {
    const name = `caviar-${randomBytes(16).toString('hex')}`;
    const file = path.join(dir, name);
    const fd = fs.openSync(
      file,
      fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL,
      0o600,
    );
    const token = randomBytes(SEGMENT_TOKEN_BYTES);
    try {
      fs.writeSync(fd, token, 0, token.length, 0);
      fs.ftruncateSync(fd, REGION_ALIGN);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw err;
    }
    return new SharedSegment(name, token, fd, file);
  }

  /**
   * A free region of at least `bytes`, added at the end of the file when none is. A new region is
   * written through once, so that a full tmpfs fails here (ENOSPC) rather than in a later write;
   * in pieces, with the event loop free between them: a large model's region is hundreds of MB.
   */
  async take(bytes: number): Promise<number> {
    let slot = this.slots.find((s) => !s.busy && s.bytes >= bytes);
    if (!slot) {
      const size = Math.ceil(Math.max(bytes, 1) / REGION_ALIGN) * REGION_ALIGN;
      // Claimed before the first pause, so a call that takes a region meanwhile gets another.
      slot = { offset: this.end, bytes: size, busy: true };
      this.end += size;
      this.slots.push(slot);
      try {
        await runYielding(this.zeroFill(slot.offset, size));
      } catch (err) {
        this.slots.splice(this.slots.indexOf(slot), 1);
        throw err;
      }
      return slot.offset;
    }
    slot.busy = true;
    return slot.offset;
  }

  private *zeroFill(offset: number, size: number): Generator<void> {
    const zeros = new Uint8Array(Math.min(size, PIECE_BYTES));
    let done = 0;
    while (done < size) {
      done += fs.writeSync(this.fd, zeros, 0, Math.min(zeros.length, size - done), offset + done);
      yield;
    }
  }

  /** Frees the region at `offset` for the next call. */
  give(offset: number): void {
    const slot = this.slots.find((s) => s.offset === offset);
    if (slot) slot.busy = false;
  }

  /** Removes the file's name; the memory stays until every process holding it closes it. */
  unlink(): void {
    fs.rmSync(this.file, { force: true });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unlink();
    fs.closeSync(this.fd);
  }
}
