/**
 * ssp:N on the coordinator. A lease's pushes can be behind by the other workers' batches that
 * land after its values were read: those out on other leases when it was granted, and those
 * granted since. Holding that count to N for every live lease keeps pushes within the bound the
 * shards enforce: a worker that gets N batches ahead of the slowest lease waits for it to come
 * back, or to expire and go to someone else (whose push, if it wakes, the shards refuse). A
 * worker that starts from the values its last push brought back may have read them before its
 * lease was granted, so a few pushes are still refused; the shards' check is what guarantees.
 */
export class StalenessGate {
  /** Training batches granted in leases of the trial so far. */
  private granted = 0;

  constructor(readonly bound: number) {}

  /**
   * How many training batches one lease may hold now, given the marks (see grant) of the other
   * workers' live leases of the trial; 0 or less: none yet.
   */
  allowance(otherMarks: Iterable<number>): number {
    let behind = 0;
    for (const mark of otherMarks) behind = Math.max(behind, this.granted - mark);
    return this.bound - behind;
  }

  /**
   * Counts a lease of `batches` training batches, granted while `outstanding` batches of other
   * workers are out on live leases; its mark, to keep with the lease.
   */
  grant(batches: number, outstanding: number): number {
    this.granted += batches;
    return this.granted - outstanding;
  }
}
