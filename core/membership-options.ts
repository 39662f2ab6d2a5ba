import { Command, InvalidArgumentError } from 'commander';
import { EtcdMembership } from './etcd-membership';
import type { MemberInfo, Membership } from './membership';
import { ThreadedRegistration } from './registration-thread';

/** The membership flags every role process takes. */
export interface MembershipFlags {
  etcd?: string;
  cluster: string;
  memberTtl: number;
}

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
    .option('--member-ttl <seconds>', 'membership lease TTL', parseTtl, 3);
}

/** The etcd endpoints of --etcd (none without it). */
export function etcdEndpoints(flags: MembershipFlags): string[] {
  return (flags.etcd ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
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
    cluster: flags.cluster,
    ttlSeconds: flags.memberTtl,
  });
}
