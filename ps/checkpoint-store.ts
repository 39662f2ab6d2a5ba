import * as fs from 'node:fs';
import * as path from 'node:path';
import { sha256 } from './checkpoint-codec';

/** Where a shard's checkpoints live. */
export interface CheckpointStore {
  /** Writes a new checkpoint atomically; the previous ones stay intact if it fails. Returns its sequence number. */
  save(blob: Buffer): Promise<number>;
  /**
   * The newest checkpoint whose manifest and checksum verify and that `decode` accepts (it
   * throws for one it cannot read), or undefined if none does.
   */
  loadNewest<T>(decode: (blob: Buffer) => T): Promise<{ seq: number; value: T } | undefined>;
}

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

/** Writes `data` to `file` through a temp file: write, fsync, rename, so readers see all or nothing. */
async function writeAtomically(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.tmp`;
  try {
    const handle = await fs.promises.open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
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

  async save(blob: Buffer): Promise<number> {
    this.nextSeq ??= ((await this.manifests())[0] ?? 0) + 1;
    const seq = this.nextSeq;
    const manifest: Manifest = {
      format: 1,
      seq,
      file: name(seq, 'bin'),
      bytes: blob.length,
      sha256: sha256(blob),
      created: new Date().toISOString(),
    };
    try {
      await writeAtomically(path.join(this.dir, manifest.file), blob);
      await writeAtomically(
        path.join(this.dir, name(seq, 'manifest.json')),
        Buffer.from(JSON.stringify(manifest)),
      );
      await syncDir(this.dir);
    } catch (err) {
      await fs.promises
        .rm(path.join(this.dir, manifest.file), { force: true })
        .catch(() => undefined);
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

  async loadNewest<T>(decode: (blob: Buffer) => T): Promise<{ seq: number; value: T } | undefined> {
    for (const seq of await this.manifests()) {
      const manifestFile = name(seq, 'manifest.json');
      try {
        return { seq, value: decode(await this.verify(manifestFile)) };
      } catch (err) {
        this.options.onSkip?.(manifestFile, (err as Error).message);
      }
    }
    return undefined;
  }

  /** The checkpoint's data if its manifest and checksum verify; throws with the reason if not. */
  private async verify(manifestFile: string): Promise<Buffer> {
    const manifest = JSON.parse(
      await fs.promises.readFile(path.join(this.dir, manifestFile), 'utf8'),
    ) as Manifest;
    const blob = await fs.promises.readFile(path.join(this.dir, manifest.file));
    if (blob.length !== manifest.bytes)
      throw new Error(
        `${manifest.file} has ${blob.length} bytes, the manifest says ${manifest.bytes}`,
      );
    if (sha256(blob) !== manifest.sha256)
      throw new Error(`${manifest.file} fails its SHA-256 checksum`);
    return blob;
  }
}
