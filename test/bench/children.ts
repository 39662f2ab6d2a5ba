import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CAVIAR_BIN, REPO_ROOT } from '../helpers/repo';

/**
 * The bench's child processes: each runs in its own process group, so a timeout or Ctrl-C takes
 * a local cluster's processes down with it.
 */

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallS: number;
  timedOut: boolean;
}

/** Process groups still running, killed if the bench itself is interrupted. */
const running = new Set<number>();

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** On Ctrl-C, the children (in their own process groups) go down with the bench. */
export function killChildrenOnSignal(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      for (const pid of running) killGroup(pid);
      process.exit(130);
    });
  }
}

/**
 * Runs a command in its own process group (so a timeout takes the local cluster's processes
 * down with it) and collects its output.
 */
export function runChild(command: string, args: string[], timeoutS: number): Promise<ChildResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    if (child.pid !== undefined) running.add(child.pid);
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
    }, timeoutS * 1000);
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      if (child.pid !== undefined) running.delete(child.pid);
      const wallS = (performance.now() - started) / 1000;
      resolve({ code, signal, stdout, stderr, wallS, timedOut });
    };
    child.on('error', (err) => {
      stderr += err.message;
      finish(null, null);
    });
    child.on('close', finish);
  });
}

export function lastJsonLine<T>(
  text: string,
  predicate: (v: Record<string, unknown>) => boolean,
): T {
  const found = text
    .trim()
    .split('\n')
    .reverse()
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    })
    .find((v) => v !== undefined && v !== null && typeof v === 'object' && predicate(v));
  if (!found) throw new Error('no JSON result line in its output');
  return found as T;
}

export function failure(r: ChildResult, what: string): string {
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ');
  if (r.timedOut) return `${what} ran past its time limit; ${tail}`;
  return `${what} exited ${r.signal ?? r.code}: ${tail}`;
}

/**
 * The first python that imports torch: `python3` on the PATH, else Debian's own interpreter
 * (python3-torch installs into /usr/bin/python3's packages, which a pyenv or venv python3 on
 * the PATH does not see).
 */
export function torchPython(): string | undefined {
  const candidates = ['python3', '/usr/bin/python3'];
  return candidates.find(
    (py) =>
      spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 120_000 }).status === 0,
  );
}

export function mnistDigitsDir(): string {
  return path.dirname(require.resolve('mnist/src/digits/0.json', { paths: [REPO_ROOT] }));
}

/** A long-running local cluster (`caviar up`, no etcd) for benches that submit many trials. */
export async function upCluster(
  workers: number,
  shards: number,
): Promise<{ coordinator: string; stop(): void }> {
  const up = spawn(
    process.execPath,
    [
      CAVIAR_BIN,
      'up',
      '--workers',
      String(workers),
      '--shards',
      String(shards),
      '--etcd',
      'none',
      '--json',
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  try {
    const ready = await new Promise<{ coordinator: string }>((resolve, reject) => {
      let out = '';
      up.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]) as { coordinator: string });
      });
      up.once('exit', () => reject(new Error('caviar up exited before it was ready')));
    });
    return { coordinator: ready.coordinator, stop: () => up.kill('SIGTERM') };
  } catch (err) {
    up.kill('SIGKILL');
    throw err;
  }
}
