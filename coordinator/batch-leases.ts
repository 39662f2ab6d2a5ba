import { randomUUID } from 'node:crypto';

export interface BatchLease<T> {
  id: string;
  worker: string;
  item: T;
  expiresAt: number;
}

/**
 * Batch leases: work handed to a worker on a time limit (not the etcd membership lease that
 * keeps a process in the cluster). A lease that is not completed in time expires and its item
 * goes back to its owner through `onExpire`; completing an expired lease finds nothing.
 */
export class BatchLeaseTable<T> {
  private readonly leases = new Map<string, BatchLease<T>>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly onExpire: (lease: BatchLease<T>) => void,
    sweepMs = 250,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => this.sweep(), sweepMs);
    this.timer.unref();
  }

  grant(worker: string, item: T, durationMs: number): BatchLease<T> {
    const lease = { id: randomUUID(), worker, item, expiresAt: this.now() + durationMs };
    this.leases.set(lease.id, lease);
    return lease;
  }

  /** Removes and returns a live lease, or undefined if it expired or never existed. */
  complete(id: string): BatchLease<T> | undefined {
    const lease = this.leases.get(id);
    if (lease) this.leases.delete(id);
    return lease;
  }

  /** The live leases of `worker`. */
  heldBy(worker: string): BatchLease<T>[] {
    return this.where((lease) => lease.worker === worker);
  }

  /** The live leases matching `predicate`. */
  where(predicate: (lease: BatchLease<T>) => boolean): BatchLease<T>[] {
    return [...this.leases.values()].filter(predicate);
  }

  /** Takes back every lease matching `predicate` without reporting them as expired. */
  revoke(predicate: (lease: BatchLease<T>) => boolean): BatchLease<T>[] {
    const revoked = this.where(predicate);
    for (const lease of revoked) this.leases.delete(lease.id);
    return revoked;
  }

  sweep(): void {
    const now = this.now();
    for (const lease of [...this.leases.values()]) {
      if (lease.expiresAt <= now) {
        this.leases.delete(lease.id);
        this.onExpire(lease);
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
