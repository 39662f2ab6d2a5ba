import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import { NotFoundError } from '../core/errors';
import { trialStatus, type TrialRecord } from './trial-record';

/** The coordinator's trials by id, in submission order. */
export class TrialTable {
  private readonly byId = new Map<string, TrialRecord>();
  private readonly order: string[] = [];
  private nextNumber = 1;

  /** The trial, or a NOT_FOUND error that reaches the client as such. */
  get(id: string): TrialRecord {
    const record = this.byId.get(id);
    if (!record) throw new NotFoundError(`no trial ${JSON.stringify(id)}`);
    return record;
  }

  find(id: string): TrialRecord | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  values(): IterableIterator<TrialRecord> {
    return this.byId.values();
  }

  /** A name for a trial submitted without one. */
  newId(): string {
    return `trial-${this.nextNumber++}`;
  }

  add(record: TrialRecord): void {
    this.byId.set(record.id, record);
    this.order.push(record.id);
    // A taken-over trial-N must not get its number handed out again.
    const n = /^trial-(\d+)$/.exec(record.id)?.[1];
    if (n) this.nextNumber = Math.max(this.nextNumber, Number(n) + 1);
  }

  statuses(): TrialStatus[] {
    return this.order.map((id) => trialStatus(this.get(id)));
  }

  runningIds(): string[] {
    return this.order.filter((id) => this.byId.get(id)?.run.state === 'running');
  }
}
