import * as fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { EtcdMembership } from './etcd-membership';
import { commaList } from './comma-list';
import type { EtcdSecurity } from './etcd-client';
import type { TlsFlags } from './security/tls-options';
import type { MemberInfo, Membership } from './membership';
import { ThreadedRegistration } from './registration-thread';

/** The membership flags every role process takes (its --tls certificate is its etcd one too). */
export interface MembershipFlags extends TlsFlags {
  etcd?: string;
  cluster: string;
  memberTtl: number;
  etcdUser?: string;
  etcdPasswordFile?: string;
}

/** Where a role reads its etcd password unless --etcd-password-file names a file. */
export const ETCD_PASSWORD_ENV = 'CAVIAR_ETCD_PASSWORD';

function parseTtl(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3_600)
    throw new InvalidArgumentError('must be whole seconds in 1..3600');
  return n;
}

export function addMembershipOptions(command: Command): Command {
  return command
    .option('--etcd <urls>', 'etcd client URLs, comma-separated (without it: no etcd, no fencing)')
    .option('--cluster <name>', 'the cluster name: keys live under /caviar/<name>/', 'default')
    .option('--member-ttl <seconds>', 'membership lease TTL', parseTtl, 3)
    .addOption(
      new Option(
        '--etcd-user <name>',
        `etcd user (an etcd with auth on); its password comes from $${ETCD_PASSWORD_ENV} or --etcd-password-file`,
      ).env('CAVIAR_ETCD_USER'),
    )
    .option('--etcd-password-file <file>', "a file holding the etcd user's password");
}

/**
 * The certificate and user a role shows etcd: its --tls identity for https endpoints, and
 * --etcd-user with its password. The password is never a flag value, which `ps` would show.
 */
export function etcdSecurity(flags: MembershipFlags): EtcdSecurity {
  const security: EtcdSecurity = {};
  if (flags.tls && etcdEndpoints(flags).some((url) => url.startsWith('https:')))
    security.tls = flags.tls;
  if (flags.etcdUser) {
    const password = flags.etcdPasswordFile
      ? fs.readFileSync(flags.etcdPasswordFile, 'utf8').trim()
      : process.env[ETCD_PASSWORD_ENV];
    if (!password)
      throw new InvalidArgumentError(
        `--etcd-user ${flags.etcdUser} needs a password: set ${ETCD_PASSWORD_ENV} or pass --etcd-password-file`,
      );
    security.auth = { username: flags.etcdUser, password };
  }
  return security;
}

/** The etcd endpoints of --etcd (none without it). */
export function etcdEndpoints(flags: MembershipFlags): string[] {
  return commaList(flags.etcd);
}

/**
 * This process's registration in the membership the flags name, kept alive from a thread of its
 * own (see registration-thread.ts); undefined without --etcd. `logName` and `logBindings` are the
 * role's logger's, so the thread's lines read as the role's.
 */
export function registrationFrom(
  flags: MembershipFlags,
  info: MemberInfo,
  logName: string,
  logBindings: Record<string, string | number> = {},
): ThreadedRegistration | undefined {
  if (!flags.etcd) return undefined;
  return new ThreadedRegistration({
    endpoints: etcdEndpoints(flags),
    security: etcdSecurity(flags),
    cluster: flags.cluster,
    ttlSeconds: flags.memberTtl,
    info,
    logName,
    logBindings,
  });
}

/** The etcd membership the flags name, or undefined when no --etcd was given. */
export function membershipFrom(flags: MembershipFlags): Membership | undefined {
  if (!flags.etcd) return undefined;
  return new EtcdMembership({
    endpoints: etcdEndpoints(flags),
    security: etcdSecurity(flags),
    cluster: flags.cluster,
    ttlSeconds: flags.memberTtl,
  });
}
