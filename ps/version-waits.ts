import * as grpc from '@grpc/grpc-js';
import { CaviarError, DeadlineExceededError, NotFoundError } from '../core/errors';
import type { TrialShard } from './trial-shard';

/** A call that can be cancelled while it waits for a version: a pull's or a push-pull's. */
export interface CancellableCall {
  on(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

type Waiter = () => void;

/**
 * Long-polls on trials' versions: a pull that asks for a version the trial has not reached
 * waits here until an update (or a replacement, a drop, the shard closing) lets it go on.
 */
export class VersionWaits {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private closing = false;

  constructor(
    private readonly shardId: string,
    private readonly trials: ReadonlyMap<string, TrialShard>,
  ) {}

  /** The trial once its version reaches `minVersion`; DEADLINE_EXCEEDED after `waitMs`. */
  until(
    id: string,
    minVersion: number,
    waitMs: number,
    call: CancellableCall,
  ): Promise<TrialShard> {
    const ready = this.trials.get(id);
    if (!ready) throw new NotFoundError(`trial ${id} is not held by shard ${this.shardId}`);
    if (ready.version >= minVersion) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const settle = (err: Error | null, trial?: TrialShard): void => {
        clearTimeout(timer);
        call.off('cancelled', onCancel);
        this.waiters.get(id)?.delete(check);
        if (this.waiters.get(id)?.size === 0) this.waiters.delete(id);
        if (trial) resolve(trial);
        else reject(err);
      };
      const check: Waiter = () => {
        const trial = this.trials.get(id);
        if (this.closing)
          settle(new CaviarError(grpc.status.UNAVAILABLE, `shard ${this.shardId} is closing`));
        else if (!trial)
          settle(new NotFoundError(`trial ${id} was dropped from shard ${this.shardId}`));
        else if (trial.version >= minVersion) settle(null, trial);
      };
      const onCancel = (): void =>
        settle(new CaviarError(grpc.status.CANCELLED, 'pull cancelled by the client'));
      const timer = setTimeout(() => {
        const version = this.trials.get(id)?.version ?? 0;
        settle(
          new DeadlineExceededError(
            `trial ${id} is at version ${version} on shard ${this.shardId}; ` +
              `waited ${waitMs} ms for version ${minVersion}`,
          ),
        );
      }, waitMs);
      timer.unref();
      call.on('cancelled', onCancel);
      this.waiters.set(id, (this.waiters.get(id) ?? new Set<Waiter>()).add(check));
    });
  }

  /** Lets waiting pulls of `trial` look again (its version changed, or it was replaced or dropped). */
  notify(trial: string): void {
    for (const check of [...(this.waiters.get(trial) ?? [])]) check();
  }

  /** Every waiting pull answers UNAVAILABLE, and later ones too once their trial changes. */
  close(): void {
    this.closing = true;
    for (const trial of this.waiters.keys()) this.notify(trial);
  }
}
