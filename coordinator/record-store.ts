import type { Etcd3 } from 'etcd3';
import { errorMessage } from '../core/errors';
import type { Logger } from '../core/log';

/**
 * Where the coordinator keeps its trials and sweeps, so a restarted or standby coordinator takes
 * them over: records with an id, as JSON.
 */
export interface RecordStore<T extends { id: string }> {
  /** Saves soon (writes of one record are coalesced); `now` waits for this state to be written. */
  save(record: T, now?: boolean): Promise<void>;
  loadAll(): Promise<T[]>;
  close(): Promise<void>;
}

/** Writes of a record at most this often: a trial's state changes with every mini-batch. */
const COALESCE_MS = 250;

/** Records under one etcd prefix (e.g. /caviar/<cluster>/trials/), one JSON value per id. */
export class EtcdRecordStore<T extends { id: string }> implements RecordStore<T> {
  private readonly latest = new Map<string, T>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  private key(id: string): string {
    return `${this.prefix}${id}`;
  }

  save(record: T, now = false): Promise<void> {
    this.latest.set(record.id, record);
    if (now) return this.flush(record.id);
    if (!this.timers.has(record.id)) {
      const timer = setTimeout(
        () => void this.flush(record.id).catch(() => undefined),
        COALESCE_MS,
      );
      timer.unref();
      this.timers.set(record.id, timer);
    }
    return Promise.resolve();
  }

  /** Writes the newest state of a record, after any write of it already under way. */
  private flush(id: string): Promise<void> {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    const previous = this.writing.get(id) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        const record = this.latest.get(id);
        if (!record) return;
        this.latest.delete(id);
        try {
          await this.client.put(this.key(id)).value(JSON.stringify(record));
        } catch (err) {
          // etcd is down: keep the state (unless a newer one came) and try again shortly.
          if (!this.latest.has(id)) this.latest.set(id, record);
          this.log.warn(
            { key: this.key(id), err: errorMessage(err) },
            'cannot save state to etcd; retrying',
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

  async loadAll(): Promise<T[]> {
    const values = await this.client.getAll().prefix(this.prefix).strings();
    return Object.values(values).map((v) => JSON.parse(v) as T);
  }

  async close(): Promise<void> {
    await Promise.all([...this.timers.keys()].map((id) => this.flush(id).catch(() => undefined)));
    await Promise.all([...this.writing.values()].map((p) => p.catch(() => undefined)));
  }
}
