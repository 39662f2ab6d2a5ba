import { status } from '@grpc/grpc-js';
import { CaviarError, errorMessage } from '../core/errors';
import { TlsConfigError } from '../core/security/tls-identity';

/** Bad input from the user: one line on stderr and exit code 2. */
export class UsageError extends Error {}

const USER_ERROR_CODES = new Set<number>([
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  // A model too large for the cluster: a smaller model, more shards or a higher --max-memory.
  status.RESOURCE_EXHAUSTED,
  // A certificate for the wrong role, or none: another --tls folder.
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
]);

/** 2 for anything the user can fix by changing the command, 1 for everything else. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError || err instanceof TlsConfigError) return 2;
  const code = err instanceof CaviarError ? err.code : (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && USER_ERROR_CODES.has(code) ? 2 : 1;
}

/** Prints one line for `err` and exits with its code. */
export function exitWithError(err: unknown): never {
  process.stderr.write(`caviar: ${errorMessage(err).split('\n')[0]}\n`);
  process.exit(exitCodeOf(err));
}
