import type { Etcd3 } from 'etcd3';
import { errorMessage } from '../core/errors';
import type { Logger } from '../core/log';
import type { PersistedTrial } from './trial-state';

/** Where the coordinator keeps its trials, so a restarted or standby coordinator takes them over. */
export interface TrialStore {
  /** Saves soon (writes of one trial are coalesced); `now` waits for this state to be written. */
  save(trial: PersistedTrial, now?: boolean): Promise<void>;
  loadAll(): Promise<PersistedTrial[]>;
  close(): Promise<void>;
}

/** Writes of a trial at most this often: its state changes with every mini-batch. */
const COALESCE_MS = 250;

/** Trials under /caviar/<cluster>/trials/<id> in etcd, one JSON value each. */
export class EtcdTrialStore implements TrialStore {
  private readonly latest = new Map<string, PersistedTrial>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly client: Etcd3,
    private readonly cluster: string,
    private readonly log: Logger,
  ) {}

  private key(id: string): string {
    return `/caviar/${this.cluster}/trials/${id}`;
  }

  save(trial: PersistedTrial, now = false): Promise<void> {
    this.latest.set(trial.id, trial);
    if (now) return this.flush(trial.id);
    if (!this.timers.has(trial.id)) {
      const timer = setTimeout(() => void this.flush(trial.id).catch(() => undefined), COALESCE_MS);
      timer.unref();
      this.timers.set(trial.id, timer);
    }
    return Promise.resolve();
  }

  /** Writes the newest state of a trial, after any write of it already under way. */
  private flush(id: string): Promise<void> {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    const previous = this.writing.get(id) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        const trial = this.latest.get(id);
        if (!trial) return;
        this.latest.delete(id);
        try {
          await this.client.put(this.key(id)).value(JSON.stringify(trial));
        } catch (err) {
          // etcd is down: keep the state (unless a newer one came) and try again shortly.
          if (!this.latest.has(id)) this.latest.set(id, trial);
          this.log.warn(
            { trial: id, err: errorMessage(err) },
            'cannot save trial state to etcd; retrying',
          );
          const retry = setTimeout(() => void this.flush(id).catch(() => undefined), 1_000);
          retry.unref();
          this.timers.set(id, retry);
          throw err;
        }
      });
    this.writing.set(id, next);
    return next;
  }

  async loadAll(): Promise<PersistedTrial[]> {
    const values = await this.client.getAll().prefix(`/caviar/${this.cluster}/trials/`).strings();
    return Object.values(values).map((v) => JSON.parse(v) as PersistedTrial);
  }

  async close(): Promise<void> {
    await Promise.all([...this.timers.keys()].map((id) => this.flush(id).catch(() => undefined)));
    await Promise.all([...this.writing.values()].map((p) => p.catch(() => undefined)));
  }
}
