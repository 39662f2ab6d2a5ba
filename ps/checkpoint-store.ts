import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import {
  CorruptCheckpointError,
  type CheckpointSink,
  type CheckpointSource,
} from './checkpoint-codec';

/** Where a shard's checkpoints live. */
export interface CheckpointStore {
  /**
   * Writes a new checkpoint, streamed by `write`, atomically; the previous ones stay intact if
   * it fails. Returns its sequence number.
   */
  save(write: (sink: CheckpointSink) => Promise<void>): Promise<number>;
  /**
   * The newest checkpoint whose manifest and checksum verify and that `decode` accepts (it
   * throws for one it cannot read), or undefined if none does.
   */
  loadNewest<T>(
    decode: (source: CheckpointSource) => Promise<T>,
  ): Promise<{ seq: number; value: T } | undefined>;
}

/** File reads and hashing go in pieces of this size, so no checkpoint-sized buffer is made. */
const READ_BYTES = 8 << 20;

export class CheckpointWriteError extends Error {}

interface Manifest {
  format: 1;
  seq: number;
  file: string;
  bytes: number;
  sha256: string;
  created: string;
}

export interface FileCheckpointStoreOptions {
  /** Checkpoints kept on disk (older ones are deleted after a successful write). Defaults to 3. */
  keep?: number;
  /** Told about every checkpoint skipped on load, and why. */
  onSkip?: (file: string, reason: string) => void;
}

const name = (seq: number, ext: string): string => `ckpt-${String(seq).padStart(8, '0')}.${ext}`;

/**
 * Writes to `file` through a temp file (write, fsync, rename), so readers see all or nothing;
 * `write` streams the content into the sink. Returns the bytes written and their SHA-256.
 */
async function writeAtomically(
  file: string,
  write: (sink: CheckpointSink) => Promise<void>,
): Promise<{ bytes: number; sha256: string }> {
  const tmp = `${file}.tmp`;
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    const handle = await fs.promises.open(tmp, 'w');
    try {
      await write({
        write: async (data) => {
          hash.update(data);
          for (let at = 0; at < data.length;) {
            at += (await handle.write(data, at, data.length - at)).bytesWritten;
          }
          bytes += data.length;
        },
      });
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Reads `file` through in pieces into `hash`; its size. */
async function hashFile(file: string, hash: Hash): Promise<number> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const piece = Buffer.alloc(READ_BYTES);
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(piece, 0, piece.length, total);
      if (bytesRead === 0) return total;
      hash.update(piece.subarray(0, bytesRead));
      total += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/** A source reading `handle` from its start. */
function fileSource(handle: fs.promises.FileHandle, size: number): CheckpointSource {
  let at = 0;
  return {
    async read(into) {
      for (let done = 0; done < into.length;) {
        const { bytesRead } = await handle.read(into, done, into.length - done, at);
        if (bytesRead === 0)
          throw new CorruptCheckpointError('checkpoint data is shorter than its header says');
        done += bytesRead;
        at += bytesRead;
      }
    },
    atEnd: () => Promise.resolve(at === size),
  };
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Checkpoints as files: `ckpt-N.bin` with the data, then `ckpt-N.manifest.json` (size and
 * SHA-256) written last, so a crash mid-write leaves no manifest and the set is ignored; a
 * truncated or corrupted file fails its checksum and the previous checkpoint is used.
 */
export class FileCheckpointStore implements CheckpointStore {
  private nextSeq: number | undefined;
  private readonly keep: number;

  constructor(
    readonly dir: string,
    private readonly options: FileCheckpointStoreOptions = {},
  ) {
    this.keep = options.keep ?? 3;
    fs.mkdirSync(dir, { recursive: true });
  }

  private async manifests(): Promise<number[]> {
    const files = await fs.promises.readdir(this.dir);
    return files
      .map((f) => /^ckpt-(\d+)\.manifest\.json$/.exec(f)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => b - a);
  }

  async save(write: (sink: CheckpointSink) => Promise<void>): Promise<number> {
    this.nextSeq ??= ((await this.manifests())[0] ?? 0) + 1;
    const seq = this.nextSeq;
    const file = name(seq, 'bin');
    try {
      const written = await writeAtomically(path.join(this.dir, file), write);
      const manifest: Manifest = {
        format: 1,
        seq,
        file,
        ...written,
        created: new Date().toISOString(),
      };
      const json = Buffer.from(JSON.stringify(manifest));
      await writeAtomically(path.join(this.dir, name(seq, 'manifest.json')), (sink) =>
        sink.write(json),
      );
      await syncDir(this.dir);
    } catch (err) {
      await fs.promises.rm(path.join(this.dir, file), { force: true }).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOSPC' || code === 'EFBIG' ? 'the disk is full' : (err as Error).message;
      throw new CheckpointWriteError(
        `checkpoint ${seq} not written (${why}); the previous checkpoint is kept`,
        { cause: err },
      );
    }
    this.nextSeq = seq + 1;
    await this.prune();
    return seq;
  }

  private async prune(): Promise<void> {
    for (const seq of (await this.manifests()).slice(this.keep)) {
      await fs.promises.rm(path.join(this.dir, name(seq, 'manifest.json')), { force: true });
      await fs.promises.rm(path.join(this.dir, name(seq, 'bin')), { force: true });
    }
  }

  async loadNewest<T>(
    decode: (source: CheckpointSource) => Promise<T>,
  ): Promise<{ seq: number; value: T } | undefined> {
    for (const seq of await this.manifests()) {
      const manifestFile = name(seq, 'manifest.json');
      try {
        const { file, bytes } = await this.verify(manifestFile);
        const handle = await fs.promises.open(file, 'r');
        try {
          return { seq, value: await decode(fileSource(handle, bytes)) };
        } finally {
          await handle.close();
        }
      } catch (err) {
        this.options.onSkip?.(manifestFile, (err as Error).message);
      }
    }
    return undefined;
  }

  /**
   * The checkpoint's data file and size if its manifest and checksum verify (read through once,
   * in pieces); throws with the reason if not.
   */
  private async verify(manifestFile: string): Promise<{ file: string; bytes: number }> {
    const manifest = JSON.parse(
      await fs.promises.readFile(path.join(this.dir, manifestFile), 'utf8'),
    ) as Manifest;
    const file = path.join(this.dir, manifest.file);
    const hash = createHash('sha256');
    const bytes = await hashFile(file, hash);
    if (bytes !== manifest.bytes)
      throw new Error(`${manifest.file} has ${bytes} bytes, the manifest says ${manifest.bytes}`);
    if (hash.digest('hex') !== manifest.sha256)
      throw new Error(`${manifest.file} fails its SHA-256 checksum`);
    return { file, bytes };
  }
}
