import type { Member } from '../proto/gen/caviar/v1/Member';
import type { Logger } from '../core/log';
import type { MemberInfo, Membership, MembershipEvent, MembershipWatch } from '../core/membership';

interface WorkerEntry {
  id: string;
  backend: string;
  pid: number;
  lastSeen: number;
}

export interface ClusterRosterOptions {
  shards: string[];
  log: Logger;
  workerTimeoutMs: number;
  membership?: Membership;
}

/** What the rest of the coordinator does when the roster changes. */
export interface RosterEvents {
  /** A worker's registration ended or was replaced: its tasks must go back to their queues. */
  workerLeft(worker: string): void;
  shardJoined(address: string | undefined): void;
  changed(): void;
}

export interface ClusterState {
  members: Member[];
  shards: string[];
}

/**
 * Who is in the cluster, as the coordinator sees it: with membership, the members its watch
 * reports; without, the shards it was given and the workers that polled lately.
 */
export class ClusterRoster {
  private readonly workers = new Map<string, WorkerEntry>();
  /** Live members by role/id, as the membership watch reports them. */
  private readonly members = new Map<string, MemberInfo>();
  private membershipWatch: MembershipWatch | undefined;

  constructor(
    private readonly options: ClusterRosterOptions,
    private readonly events: RosterEvents,
  ) {}

  async start(): Promise<void> {
    if (!this.options.membership) return;
    this.membershipWatch = await this.options.membership.watch((event) => this.onMembership(event));
    for (const member of this.membershipWatch.members) this.onMembership({ type: 'join', member });
  }

  async close(): Promise<void> {
    await this.membershipWatch?.close().catch(() => undefined);
  }

  private onMembership({ type, member }: MembershipEvent): void {
    const key = `${member.role}/${member.id}`;
    if (type === 'join') {
      const previous = this.members.get(key);
      this.members.set(key, member);
      // A new registration under the same id (a restarted process, or one whose lease ended) ends
      // the old one's tasks now: its old lease may never expire visibly, the key was overwritten.
      if (member.role === 'worker' && previous && previous.token !== member.token)
        this.events.workerLeft(member.id);
      if (member.role === 'worker') this.touchWorker(member.id, member.backend, member.pid);
      if (member.role === 'ps') this.events.shardJoined(member.address);
      this.events.changed();
      return;
    }
    // A stale delete (an older registration of a member that registered again) changes nothing.
    if (this.members.get(key)?.token !== member.token && member.token) return;
    this.members.delete(key);
    this.options.log.warn({ role: member.role, id: member.id }, 'member left (lease ended)');
    if (member.role === 'worker') this.events.workerLeft(member.id);
  }

  /** With membership, a worker without a live lease gets nothing: its pushes would be fenced. */
  mayTakeWork(worker: string): boolean {
    return !this.options.membership || this.members.has(`worker/${worker}`);
  }

  /** Sync trials size their steps by this. */
  liveWorkerCount(): number {
    return this.liveWorkers().length;
  }

  backendOf(worker: string): string | undefined {
    return this.workers.get(worker)?.backend;
  }

  private liveWorkers(now = Date.now()): WorkerEntry[] {
    return [...this.workers.values()].filter((w) => this.isLive(w, now));
  }

  private isLive(worker: WorkerEntry, now = Date.now()): boolean {
    if (this.options.membership) return this.members.has(`worker/${worker.id}`);
    return now - worker.lastSeen <= this.options.workerTimeoutMs;
  }

  touchWorker(id: string, backend?: string, pid?: number): void {
    const entry = this.workers.get(id) ?? {
      id,
      backend: backend ?? '',
      pid: pid ?? 0,
      lastSeen: 0,
    };
    if (backend) entry.backend = backend;
    if (pid) entry.pid = pid;
    entry.lastSeen = Date.now();
    this.workers.set(id, entry);
  }

  clusterState(coordinatorAddress: string): ClusterState {
    if (this.options.membership) {
      const members = [...this.members.values()].map((m) => ({
        role: m.role,
        id: m.id,
        address: m.address ?? '',
        pid: m.pid ?? 0,
        backend: m.backend ?? '',
      }));
      return { members, shards: this.options.shards };
    }
    const members: Member[] = [
      { role: 'coordinator', id: 'coordinator', address: coordinatorAddress, pid: process.pid },
      ...this.options.shards.map((address, i) => ({ role: 'ps', id: `ps-${i}`, address })),
      ...this.liveWorkers().map((w) => ({
        role: 'worker',
        id: w.id,
        pid: w.pid,
        backend: w.backend,
      })),
    ];
    return { members, shards: this.options.shards };
  }
}
