import type { ChildProcess } from 'node:child_process';

/**
 * What the wire benches (system-path.ts, loopback.ts) share: they fork their server side as a
 * child process and ask it for its CPU time around the measured window.
 */

/** CPU milliseconds (user + system) this process has used so far. */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Child side: answers every message from the parent with `{ cpuMs }`. */
export function answerCpuQueries(): void {
  process.on('message', () => process.send?.({ cpuMs: cpuMs() }));
}

/** The first message from `child` that `pick` maps to a value; rejects if the child exits first. */
export function replyFrom<M, T>(child: ChildProcess, pick: (m: M) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: M): void => {
      const v = pick(m);
      if (v === undefined) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(v);
    };
    const onExit = (code: number | null): void => {
      child.off('message', onMessage);
      reject(new Error(`bench child exited (${code}) before it answered`));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Parent side: the CPU milliseconds `child` (running answerCpuQueries) has used so far. */
export function childCpuMs(child: ChildProcess): Promise<number> {
  const answer = replyFrom(child, (m: { cpuMs?: number }) => m.cpuMs);
  child.send('cpu');
  return answer;
}
