import * as fs from 'node:fs';
import { sleep } from './cluster';

/** Whether a process with this pid exists (it may be a zombie not yet reaped). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves once `check()` holds, asking `poll()` (which may refresh what `check` reads) before
 * each look; rejects naming `what` after `ms`.
 */
export async function waitUntil(
  what: string,
  check: () => boolean,
  ms = 30_000,
  poll: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const deadline = Date.now() + ms;
  for (await poll(); !check(); await poll()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A size field of /proc/PID/status (VmRSS, RssAnon...) in bytes; NaN if the process is gone. */
export function procStatusBytes(pid: number, field: 'VmRSS' | 'RssAnon'): number {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return NaN;
  }
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1];
  return kb === undefined ? NaN : Number(kb) * 1024;
}
