import type { Membership, MembershipEvent, Role } from '../core/membership';

/**
 * A Membership that also counts, by role, the members whose lease ended while this process
 * watched: the cluster's lease losses, seen from the coordinator. It wraps the watch callback,
 * so the coordinator itself needs no metric code.
 */
export class CountingMembership implements Membership {
  readonly kind = 'etcd' as const;
  readonly departures = new Map<Role, number>();

  constructor(private readonly inner: Membership) {}

  get cluster(): string {
    return this.inner.cluster;
  }

  register(...args: Parameters<Membership['register']>): ReturnType<Membership['register']> {
    return this.inner.register(...args);
  }

  list(role?: Role): ReturnType<Membership['list']> {
    return this.inner.list(role);
  }

  watch(onEvent: (event: MembershipEvent) => void, role?: Role): ReturnType<Membership['watch']> {
    return this.inner.watch((event) => {
      if (event.type === 'leave') {
        const r = event.member.role;
        this.departures.set(r, (this.departures.get(r) ?? 0) + 1);
      }
      onEvent(event);
    }, role);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
