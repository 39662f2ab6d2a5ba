import * as fs from 'node:fs';
import * as os from 'node:os';
import bytes from 'bytes';

/** "512MB", "2GB", "1.5GiB" or a plain number of bytes, as bytes; undefined if unreadable. */
export function parseMemorySize(text: string): number | undefined {
  const trimmed = text.trim();
  const n = /^\d+$/.test(trimmed) ? Number(trimmed) : bytes.parse(trimmed.replace(/iB$/i, 'B'));
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Bytes as people read them: "1.5 GB", "64 MB" (binary units, as `bytes` writes them). */
export function formatMemorySize(n: number): string {
  return bytes.format(n, { unitSeparator: ' ', decimalPlaces: 1 }) ?? `${n} B`;
}

/**
 * The memory this process may use: the machine's, or the cgroup's limit where that is smaller
 * (a container's memory.max), since the kernel's OOM killer enforces the smaller one.
 */
export function availableMemory(): number {
  const total = os.totalmem();
  try {
    const limit = fs.readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    const n = Number(limit);
    return limit !== 'max' && Number.isFinite(n) && n > 0 ? Math.min(total, n) : total;
  } catch {
    return total;
  }
}
