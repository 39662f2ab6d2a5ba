import { InvalidArgumentError, Option } from 'commander';
import { loadTlsIdentity, TlsConfigError, type TlsIdentity, type TlsRole } from './tls-identity';

/** Where a role finds its TLS folder when --tls is not given (systemd units and pods set it). */
export const TLS_DIR_ENV = 'CAVIAR_TLS_DIR';

/**
 * `--tls DIR` for a process speaking as `role`: the folder is read and checked while the flags
 * are parsed, so a missing or mismatched file is one line and exit 2 before anything starts.
 */
export function tlsOption(role: TlsRole): Option {
  return new Option(
    '--tls <dir>',
    `mutual TLS: ca.pem, ${role}.pem and ${role}-key.pem in this folder (caviar certs DIR mints them)`,
  )
    .env(TLS_DIR_ENV)
    .argParser((dir: string): TlsIdentity => {
      try {
        return loadTlsIdentity(dir, role);
      } catch (err) {
        if (err instanceof TlsConfigError) throw new InvalidArgumentError(err.message);
        throw err;
      }
    });
}

/** The flags of a process that may speak TLS. */
export interface TlsFlags {
  tls?: TlsIdentity;
}
