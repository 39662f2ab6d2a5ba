import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

/** Labelled examples as flat arrays: `features` holds `labels.length` rows of `featureSize` values. */
export interface CachedArrays {
  features: Float32Array;
  labels: Int32Array;
  /** What the writer needs to make sense of the arrays again (JSON, say); "" for none. */
  meta?: string;
}

/** "CVA2": caviar arrays, version 2 (with a metadata block). Another magic is ignored and rewritten. */
const MAGIC = 0x32415643;
/** Magic, example count, metadata bytes. */
const HEADER_BYTES = 12;

/** Bytes of metadata padded to a whole number of 4-byte words, so the arrays stay aligned. */
const padded = (n: number): number => Math.ceil(n / 4) * 4;

/**
 * Where parsed datasets are kept between processes: $CAVIAR_CACHE_DIR, else
 * $XDG_CACHE_HOME/caviar, else ~/.cache/caviar.
 */
export function cacheDir(): string {
  if (process.env.CAVIAR_CACHE_DIR) return process.env.CAVIAR_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'caviar');
}

/** The cache file for `name` built from sources described by `fingerprint` (sizes, mtimes, versions). */
export function cacheFile(name: string, fingerprint: string): string {
  const digest = createHash('sha256').update(fingerprint).digest('hex').slice(0, 16);
  return path.join(cacheDir(), `${name}-${digest}.bin`);
}

/** The name part of a file cacheFile made, or undefined for any other file. */
const cacheName = (file: string): string | undefined =>
  /^(.*)-[0-9a-f]{16}\.bin$/.exec(path.basename(file))?.[1];

/**
 * The arrays stored in `file` and the length of one feature row, or undefined when the file is
 * missing, from another format, or not the length its header promises (a write cut short, say):
 * the caller then builds the arrays again.
 */
export async function readCachedArrays(
  file: string,
): Promise<(Required<CachedArrays> & { featureSize: number }) | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await handle.stat();
    const header = Buffer.alloc(HEADER_BYTES);
    if (!(await readFully(handle, header, 0)) || header.readUInt32LE(0) !== MAGIC) return undefined;
    const count = header.readUInt32LE(4);
    const metaBytes = header.readUInt32LE(8);
    const labelsAt = HEADER_BYTES + padded(metaBytes);
    const featuresAt = labelsAt + count * 4;
    const featureBytes = size - featuresAt;
    if (count === 0 || featureBytes < 0 || featureBytes % (count * 4) !== 0) return undefined;
    // Read straight into the arrays: 31 MB for MNIST, once, with no buffer in between.
    const meta = Buffer.alloc(metaBytes);
    const labels = new Int32Array(count);
    const features = new Float32Array(featureBytes / 4);
    const complete =
      (await readFully(handle, meta, HEADER_BYTES)) &&
      (await readFully(handle, labels, labelsAt)) &&
      (await readFully(handle, features, featuresAt));
    if (!complete) return undefined;
    return { features, labels, meta: meta.toString('utf8'), featureSize: featureBytes / 4 / count };
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/** Fills `into` from the file at `position`; false when the file ends first. */
async function readFully(
  handle: fs.FileHandle,
  into: ArrayBufferView,
  position: number,
): Promise<boolean> {
  const bytes = new Uint8Array(into.buffer, into.byteOffset, into.byteLength);
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesRead } = await handle.read(bytes, done, bytes.byteLength - done, position + done);
    if (bytesRead === 0) return false;
    done += bytesRead;
  }
  return true;
}

/**
 * Stores the arrays in `file` through a temporary file and a rename, so concurrent writers (a
 * coordinator and its workers loading the same data at once) and readers never see half a file.
 * A cache that cannot be written (read-only home, full disk) is not an error: the next load
 * parses the sources again.
 */
export async function writeCachedArrays(file: string, arrays: CachedArrays): Promise<boolean> {
  const meta = Buffer.from(arrays.meta ?? '', 'utf8');
  const header = Buffer.alloc(HEADER_BYTES + padded(meta.byteLength));
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(arrays.labels.length, 4);
  header.writeUInt32LE(meta.byteLength, 8);
  meta.copy(header, HEADER_BYTES);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const handle = await fs.open(tmp, 'w');
    try {
      const parts = [
        header,
        new Uint8Array(arrays.labels.buffer, arrays.labels.byteOffset, arrays.labels.byteLength),
        new Uint8Array(
          arrays.features.buffer,
          arrays.features.byteOffset,
          arrays.features.byteLength,
        ),
      ];
      const { bytesWritten } = await handle.writev(parts);
      if (bytesWritten !== parts.reduce((n, p) => n + p.byteLength, 0))
        throw new Error('short write');
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch {
    await fs.rm(tmp, { force: true });
    return false;
  }
  await removeOlderCopies(file);
  return true;
}

/**
 * Removes the other copies cacheFile made under the same name (from sources since changed, or
 * another checkout's): each is as large as its data set, and only the newest is read again.
 */
async function removeOlderCopies(file: string): Promise<void> {
  const name = cacheName(file);
  if (name === undefined) return;
  const dir = path.dirname(file);
  const older = (await fs.readdir(dir).catch(() => [] as string[])).filter(
    (f) => f !== path.basename(file) && cacheName(f) === name,
  );
  await Promise.all(older.map((f) => fs.rm(path.join(dir, f), { force: true })));
}
