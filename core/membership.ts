import type { EventEmitter } from 'node:events';

export type Role = 'coordinator' | 'ps' | 'worker';

/** A process of the cluster as it registers itself. */
export interface MemberInfo {
  role: Role;
  id: string;
  address?: string;
  pid?: number;
  backend?: string;
  /**
   * The membership lease this registration lives on: the fencing token that a worker's pushes
   * carry, so a shard can refuse a process whose lease has expired even if it wakes up later.
   */
  token?: string;
}

export type MembershipEvent = { type: 'join' | 'leave'; member: MemberInfo };

/**
 * This process's registration. It emits `'lost'` when the lease behind it is gone (expired while
 * the process was paused or cut off, or revoked): from then on the process must not act on the
 * registration's behalf, and must register again to get a new token.
 */
export interface Registration extends EventEmitter {
  readonly token: string;
  readonly key: string;
  isLost(): boolean;
  /** Leaves the cluster: revokes the lease so others see the member go at once. */
  close(): Promise<void>;
}

/** A stream of membership changes; `members` held the live members when the watch started. */
export interface MembershipWatch {
  readonly members: MemberInfo[];
  close(): Promise<void>;
}

/** Who is in the cluster: registration on leases, and a watch of everyone else's. */
export interface Membership {
  readonly kind: 'etcd';
  readonly cluster: string;
  register(info: MemberInfo): Promise<Registration>;
  /** The live members of `role` (all roles when omitted), straight from the store. */
  list(role?: Role): Promise<MemberInfo[]>;
  watch(onEvent: (event: MembershipEvent) => void, role?: Role): Promise<MembershipWatch>;
  close(): Promise<void>;
}

export function memberPrefix(cluster: string, role?: Role): string {
  return `/caviar/${cluster}/members/${role ? `${role}/` : ''}`;
}

export function memberKey(cluster: string, role: Role, id: string): string {
  return `${memberPrefix(cluster, role)}${id}`;
}
