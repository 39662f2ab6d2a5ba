import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { drain } from './yielding';

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

/** Writes `arrays` back to back from byte `position` of `fd`. */
export function writeArrays(fd: number, position: number, arrays: readonly Float32Array[]): void {
  drain(writeArraysInPieces(fd, position, arrays));
}

/** Bytes a piecewise write puts down between pauses. */
const WRITE_PIECE_BYTES = 8 << 20;

/**
 * `writeArrays`, pausing (a yield) after every 8 MB, so a caller can let its event loop run
 * between pieces of a model-sized write (the first into a fresh segment also takes its pages).
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
      const n = Math.min(WRITE_PIECE_BYTES, bytes.byteLength - done);
      done += fs.writeSync(fd, bytes, done, n, at + done);
      yield;
    }
    at += bytes.byteLength;
  }
}

/** Fills `arrays` from the bytes back to back from `position` of `fd`; throws on a short file. */
export function readArrays(fd: number, position: number, arrays: readonly Float32Array[]): void {
  let at = position;
  for (const values of arrays) {
    const bytes = bytesOf(values);
    let done = 0;
    while (done < bytes.byteLength) {
      const n = fs.readSync(fd, bytes, done, bytes.byteLength - done, at + done);
      if (n === 0) {
        throw new RangeError(`the segment ends at byte ${at + done}, before the region does`);
      }
      done += n;
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
   * written through once, so that a full tmpfs fails here (ENOSPC) rather than in a later write.
   */
  take(bytes: number): number {
    let slot = this.slots.find((s) => !s.busy && s.bytes >= bytes);
    if (!slot) {
      const size = Math.ceil(Math.max(bytes, 1) / REGION_ALIGN) * REGION_ALIGN;
      const zeros = new Uint8Array(size);
      let done = 0;
      while (done < size) done += fs.writeSync(this.fd, zeros, done, size - done, this.end + done);
      slot = { offset: this.end, bytes: size, busy: false };
      this.end += size;
      this.slots.push(slot);
    }
    slot.busy = true;
    return slot.offset;
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
