import { spawnSync } from 'node:child_process';

/**
 * util-linux's setpriv, when it can set a parent-death signal here: a launcher's children then
 * die with it, even when it is SIGKILLed and has no chance to stop them (a test run killed at its
 * time limit, `caviar up` killed by hand). setpriv execs the command, so the child keeps the pid
 * the launcher signals.
 */
const SETPRIV = ((): string | undefined => {
  if (process.platform !== 'linux') return undefined;
  const probe = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore' });
  return probe.status === 0 ? 'setpriv' : undefined;
})();

/** The command and arguments that run `command args` as a child that dies with this process. */
export function diesWithParent(command: string, args: readonly string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', command, ...args]] : [command, [...args]];
}
