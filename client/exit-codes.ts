import { errorMessage } from '../core/errors';
import { isUserError } from '../core/call-status';
import { TlsConfigError } from '../core/security/tls-identity';

/** Bad input from the user: one line on stderr and exit code 2. */
export class UsageError extends Error {}

/** 2 for anything the user can fix by changing the command, 1 for everything else. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError || err instanceof TlsConfigError) return 2;
  return isUserError(err) ? 2 : 1;
}

/** Prints one line for `err` and exits with its code. */
export function exitWithError(err: unknown): never {
  process.stderr.write(`caviar: ${errorMessage(err).split('\n')[0]}\n`);
  process.exit(exitCodeOf(err));
}
