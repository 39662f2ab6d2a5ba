import type { AppliedBatches__Output } from '../proto/gen/caviar/v1/AppliedBatches';
import { status } from '@grpc/grpc-js';
import { CaviarError, errorMessage, ResourceExhaustedError } from '../core/errors';
import { withRetries } from '../core/retry';
import { formatMemorySize } from '../core/memory-size';
import type { Logger } from '../core/log';
import { sliceElements, slicesOnShard, type Slice } from '../core/placement';
import { batchKey } from '../core/batches';
import { ParameterServerClient, type InitTrialHeader } from '../core/ps-client';
import type { TrialRecord } from './trial-record';
import type { SeededInit } from '../proto/gen/caviar/v1/SeededInit';
import type { TlsIdentity } from '../core/security/tls-identity';

/**
 * One number for "batches applied" from every shard's count: their common value when they agree,
 * otherwise the one furthest from `scheduled`, so a lost or doubled batch on any shard shows.
 */
export function agreedCount(perShard: readonly number[], scheduled: number): number {
  return perShard.reduce(
    (worst, n) => (Math.abs(n - scheduled) > Math.abs(worst - scheduled) ? n : worst),
    perShard[0] ?? 0,
  );
}

/** How long a trial's start waits for a shard that is down or restarting. */
const SHARD_WAIT_MS = 15_000;
const SHARD_DOWN = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

/** The parameter-server shards, and what the coordinator asks of them for one trial. */
export class TrialShards {
  private readonly clients: ParameterServerClient[];

  constructor(
    addresses: readonly string[],
    private readonly log: Logger,
    tls?: TlsIdentity,
  ) {
    this.clients = addresses.map((a) => new ParameterServerClient(a, { tls }));
  }

  get count(): number {
    return this.clients.length;
  }

  /** The clients of the shards that hold part of a trial placed as `slices`. */
  private holding(slices: Slice[]): ParameterServerClient[] {
    return this.clients.filter((_, s) => slicesOnShard(slices, s).length > 0);
  }

  /**
   * Refuses (RESOURCE_EXHAUSTED) a trial whose slices would not fit in a shard's memory, before
   * its initial values are made: `what` names the model in the message. A shard without the
   * Capacity call (an older one) is not asked; its Init still checks.
   */
  async admit(
    trial: string,
    what: string,
    slices: Slice[],
    demand: { optimizer: string; mode: string },
  ): Promise<void> {
    const answers = await Promise.all(
      this.clients.map(async (client, shard) => {
        const elements = sliceElements(slicesOnShard(slices, shard));
        if (elements === 0) return undefined;
        try {
          const capacity = await this.whileShardUp(client, () =>
            client.capacity({ elements, ...demand }),
          );
          return { elements, ...capacity };
        } catch (err) {
          if ((err as { code?: unknown }).code === status.UNIMPLEMENTED) return undefined;
          throw err;
        }
      }),
    );
    const short = answers.find((a) => a && a.reserved_bytes + a.needed_bytes > a.limit_bytes);
    if (!short) return;
    const free = Math.max(0, short.limit_bytes - short.reserved_bytes);
    throw new ResourceExhaustedError(
      `trial ${trial} (${what}) does not fit in the shards' memory: shard ${short.shard} would ` +
        `need ${formatMemorySize(short.needed_bytes)} for its ${short.elements} parameters ` +
        `(values, optimizer state, snapshots, checkpoint and transfer copies) and has ` +
        `${formatMemorySize(free)} free of its ${formatMemorySize(short.limit_bytes)} limit; ` +
        `use a smaller model, more shards, or a higher caviar ps --max-memory`,
    );
  }

  /**
   * Gives each shard its slices of a new trial, with their initial values. If one shard refuses,
   * the others drop what they took, so a refused trial holds no memory anywhere.
   */
  async init(
    trial: string,
    slices: Slice[],
    header: Omit<InitTrialHeader, 'slices'>,
    values: ReadonlyMap<string, Float32Array> | SeededInit,
  ): Promise<void> {
    const results = await Promise.allSettled(
      this.clients.map((client, shard) => {
        const mine = slicesOnShard(slices, shard);
        if (mine.length === 0) return Promise.resolve(0);
        // Init replaces what a first try may have left: trying again is safe.
        return this.whileShardUp(client, () =>
          client.init(trial, { ...header, slices: mine }, values),
        );
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return;
    await this.drop(trial);
    throw failed.reason;
  }

  /**
   * A call of a trial's start, tried again while its shard is down or restarting (UNAVAILABLE,
   * DEADLINE_EXCEEDED) for up to SHARD_WAIT_MS, within the submitter's deadline; past that, one
   * line that names the shard and what to do instead of the transport's message.
   */
  private async whileShardUp<T>(client: ParameterServerClient, call: () => Promise<T>): Promise<T> {
    let told = false;
    try {
      return await withRetries(call, {
        budgetMs: SHARD_WAIT_MS,
        retryable: (err) => SHARD_DOWN.has((err as { code?: unknown }).code as number),
        onRetry: (err) => {
          if (told) return;
          told = true;
          this.log.warn(
            { shard: client.address, err: errorMessage(err) },
            'a shard is down or restarting; the trial waits for it',
          );
        },
      });
    } catch (err) {
      if (!SHARD_DOWN.has((err as { code?: unknown }).code as number)) throw err;
      throw new CaviarError(
        status.UNAVAILABLE,
        `parameter-server shard ${client.address} did not answer for ${SHARD_WAIT_MS / 1000} s, ` +
          `so the trial was not started: submit it again once the shard is back ` +
          `(caviar up restarts it by itself; elsewhere start it with caviar ps)`,
        { cause: err },
      );
    }
  }

  async setLearningRate(record: TrialRecord, lr: number): Promise<void> {
    await Promise.all(this.holding(record.slices).map((c) => c.setLearningRate(record.id, lr)));
  }

  /**
   * What each shard holding the trial has applied of it; rejects if one cannot answer. With
   * snapshotEpoch, each shard also keeps its values as that epoch's end, for the evaluation.
   */
  applied(record: TrialRecord, snapshotEpoch?: number): Promise<AppliedBatches__Output[]> {
    return Promise.all(
      this.holding(record.slices).map((c) => c.applied(record.id, { snapshotEpoch })),
    );
  }

  /** Keys of the batches that every shard holding the trial has applied; undefined if one lost it. */
  async appliedEverywhere(trial: string, slices: Slice[]): Promise<Set<number> | undefined> {
    const answers = await Promise.all(this.holding(slices).map((c) => c.applied(trial)));
    if (answers.some((a) => !a.held)) return undefined;
    const sets = answers.map((a) => new Set(a.epochs.map((e, i) => batchKey(e, a.batches[i]))));
    return new Set([...sets[0]].filter((key) => sets.every((set) => set.has(key))));
  }

  /** The shards' account of an ended trial (what they applied and refused), and its parameters. */
  async collectResults(record: TrialRecord): Promise<void> {
    const stats = await Promise.all(this.holding(record.slices).map((c) => c.stats(record.id)));
    record.batchesAppliedPerShard = stats.map((s) => Number(s.batches_applied));
    record.batchesApplied = agreedCount(record.batchesAppliedPerShard, record.run.scheduled);
    for (const s of stats) {
      for (const [reason, n] of Object.entries(s.refused)) {
        record.pushesRefused[reason] = (record.pushesRefused[reason] ?? 0) + Number(n);
      }
    }
    record.timing.apply = stats.reduce((sum, s) => sum + s.apply_seconds, 0);
    record.finalParams = await this.pullAll(record);
  }

  /** Every tensor of the trial: the trained ones from the shards, the frozen ones from the record. */
  async pullAll(record: TrialRecord): Promise<Map<string, Float32Array>> {
    const values = new Map(
      record.params.map((p) => [p.name, new Float32Array(p.shape.reduce((a, b) => a * b, 1))]),
    );
    await Promise.all(
      this.clients.map((client, shard) => {
        const mine = slicesOnShard(record.slices, shard);
        return mine.length === 0
          ? Promise.resolve()
          : client.pull(record.id, mine, values, { minVersion: 0 });
      }),
    );
    for (const [name, frozen] of record.frozenValues) values.get(name)?.set(frozen);
    return values;
  }

  /** Frees the trial's memory on every shard; a shard that cannot is only logged. */
  async drop(trial: string): Promise<void> {
    await Promise.all(
      this.clients.map((c) =>
        c
          .drop(trial)
          .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'drop failed')),
      ),
    );
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
