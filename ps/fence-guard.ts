import type { Membership, MembershipWatch } from '../core/membership';

/**
 * Which workers' membership leases are live, as etcd says: a push is applied only if its sender's
 * token is the token of that worker's current registration. Follows a watch of the workers'
 * keys, and asks etcd directly about a token it has not seen yet (a worker that just joined).
 */
export class FenceGuard {
  private readonly live = new Map<string, string>();
  private readonly dead = new Set<string>();
  private watch: MembershipWatch | undefined;

  constructor(private readonly membership: Membership) {}

  async start(): Promise<void> {
    this.watch = await this.membership.watch((event) => {
      const { id, token = '' } = event.member;
      if (event.type === 'join') {
        this.live.set(id, token);
      } else {
        if (this.live.get(id) === token) this.live.delete(id);
        this.dead.add(token);
      }
    }, 'worker');
    for (const m of this.watch.members) this.live.set(m.id, m.token ?? '');
  }

  async allows(worker: string, token: string): Promise<boolean> {
    if (!token || this.dead.has(token)) return false;
    if (this.live.get(worker) === token) return true;
    const current = (await this.membership.list('worker')).find((m) => m.id === worker);
    if (current?.token) this.live.set(worker, current.token);
    return current?.token === token;
  }

  async close(): Promise<void> {
    await this.watch?.close();
  }
}
