import { ResourceExhaustedError } from '../core/errors';
import { formatMemorySize } from '../core/memory-size';
import type { ShardCapacity } from '../proto/gen/caviar/v1/ShardCapacity';
import { trialFootprintBytes } from './trial-footprint';
import type { ConsistencyMode, TrialShard } from './trial-shard';

/** What admission needs to know of a trial that asks for room. */
export interface TrialDemand {
  trial: string;
  elements: number;
  optimizer: string;
  mode: ConsistencyMode;
}

/**
 * A shard's memory budget: the trials it holds take their footprint (trial-footprint.ts) of it,
 * and a new trial is admitted only if its footprint fits in what is left. A trial Init replaces
 * gives its room back to its successor.
 */
export class MemoryAdmission {
  constructor(
    private readonly shard: string,
    readonly limitBytes: number,
    private readonly trials: ReadonlyMap<string, TrialShard>,
  ) {}

  private reservedBytes(except?: string): number {
    let sum = 0;
    for (const [id, t] of this.trials)
      if (id !== except) sum += trialFootprintBytes(t.elements, t.config.kind, t.mode);
    return sum;
  }

  capacity(demand: Omit<TrialDemand, 'trial'>): ShardCapacity {
    return {
      shard: this.shard,
      limit_bytes: this.limitBytes,
      reserved_bytes: this.reservedBytes(),
      needed_bytes: trialFootprintBytes(demand.elements, demand.optimizer, demand.mode),
    };
  }

  /** Refuses (RESOURCE_EXHAUSTED) a trial whose slices would not fit here. */
  admit(demand: TrialDemand): void {
    const needed = trialFootprintBytes(demand.elements, demand.optimizer, demand.mode);
    const free = this.limitBytes - this.reservedBytes(demand.trial);
    if (needed <= free) return;
    throw new ResourceExhaustedError(
      `trial ${demand.trial} needs ${formatMemorySize(needed)} on shard ${this.shard} for its ` +
        `${demand.elements} parameters there, which has ${formatMemorySize(Math.max(0, free))} ` +
        `free of its ${formatMemorySize(this.limitBytes)} limit (caviar ps --max-memory)`,
    );
  }
}
