import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

/** Labelled examples as flat arrays: `features` holds `labels.length` rows of `featureSize` values. */
export interface CachedArrays {
  features: Float32Array;
  labels: Int32Array;
}

/** "CVA1": caviar arrays, version 1. A file with another magic is ignored and rewritten. */
const MAGIC = 0x31415643;
const HEADER_BYTES = 8;

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

/**
 * The arrays stored in `file`, or undefined when it is missing, from another format, or not the
 * length its header promises (a write cut short, say): the caller then parses its sources again.
 */
export async function readCachedArrays(
  file: string,
  featureSize: number,
): Promise<CachedArrays | undefined> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch {
    return undefined;
  }
  if (bytes.byteLength < HEADER_BYTES || bytes.readUInt32LE(0) !== MAGIC) return undefined;
  const count = bytes.readUInt32LE(4);
  if (bytes.byteLength !== HEADER_BYTES + count * 4 * (1 + featureSize)) return undefined;
  // Copies into fresh, aligned arrays: readFile's buffer may sit at any offset of a shared pool.
  const labels = new Int32Array(count);
  new Uint8Array(labels.buffer).set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + count * 4));
  const features = new Float32Array(count * featureSize);
  new Uint8Array(features.buffer).set(bytes.subarray(HEADER_BYTES + count * 4));
  return { features, labels };
}

/**
 * Stores the arrays in `file` through a temporary file and a rename, so concurrent writers (a
 * coordinator and its workers loading the same data at once) and readers never see half a file.
 * A cache that cannot be written (read-only home, full disk) is not an error: the next load
 * parses the sources again.
 */
export async function writeCachedArrays(file: string, arrays: CachedArrays): Promise<boolean> {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(arrays.labels.length, 4);
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
    return true;
  } catch {
    await fs.rm(tmp, { force: true });
    return false;
  }
}
