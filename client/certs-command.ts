import { mintDevelopmentCerts } from '../core/security/dev-certs';
import { UsageError } from './exit-codes';
import { commaList } from '../core/comma-list';

export interface CertsOptions {
  hosts: string;
  days: number;
  force?: boolean;
}

/** `caviar certs DIR`: mints a development CA and per-role certificates, lists what it wrote. */
export function certsCommand(dir: string, opts: CertsOptions): Promise<number> {
  const hosts = commaList(opts.hosts);
  let written: string[];
  try {
    written = mintDevelopmentCerts({ dir, hosts, days: opts.days, force: opts.force === true });
  } catch (err) {
    // An existing set, or a folder that cannot be written: both fixed by another command.
    throw new UsageError((err as Error).message);
  }
  for (const file of written) process.stdout.write(file + '\n');
  process.stderr.write(
    `minted a development CA and certificates for coordinator, ps, worker, client and etcd in ${dir}; ` +
      `ca-key.pem signs new ones: keep it off the hosts that do not mint\n`,
  );
  return Promise.resolve(0);
}
