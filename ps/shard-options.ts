import { availableMemory } from '../core/memory-size';
import { InvalidArgumentError } from '../core/errors';
import type { Logger } from '../core/log';
import type { FenceGuard } from './fence-guard';
import type { CheckpointPolicy } from './checkpointer';
import type { ShardObserver } from './shard-observer';
import type { TlsIdentity } from '../core/security/tls-identity';

export interface ShardOptions {
  /** Names the shard in logs and errors. Defaults to "ps-0". */
  id?: string;
  /** Interface to listen on. Defaults to 127.0.0.1. */
  host?: string;
  /** TCP port; 0 picks a free one. Defaults to 0. */
  port?: number;
  /** Upper bound on how long a Pull may wait for its min_version. Defaults to 30 s. */
  maxPullWaitMs?: number;
  /** How long `close` lets in-flight calls finish before cutting them. Defaults to 5 s. */
  closeGraceMs?: number;
  /** Where refused calls and internal errors are logged. Defaults to no logging. */
  logger?: Logger;
  /** Refuses pushes from senders whose membership lease is gone. Defaults to none (no fencing). */
  fence?: FenceGuard;
  /** Save the shard's state so a restart with the same id restores it. Defaults to none. */
  checkpoints?: CheckpointPolicy;
  /** Told of apply latency and bytes moved, for metrics. Defaults to none. */
  observer?: ShardObserver;
  /**
   * The shared-memory folder where workers on this machine create the segments they attach
   * (see core/shared-segment.ts). Defaults to none: every worker streams chunks.
   */
  sharedMemoryDir?: string;
  /**
   * The memory the trials' slices may take here (see trial-footprint.ts); Init refuses a trial
   * that would not fit. Defaults to half of the machine's (or the container's) memory.
   */
  maxMemoryBytes?: number;
  /** Mutual TLS: serve with this identity and check each caller's role. Defaults to plaintext. */
  tls?: TlsIdentity;
}

export type ResolvedShardOptions = Required<
  Omit<ShardOptions, 'logger' | 'fence' | 'checkpoints' | 'observer' | 'sharedMemoryDir' | 'tls'>
> & {
  logger?: Logger;
  fence?: FenceGuard;
  checkpoints?: CheckpointPolicy;
  observer?: ShardObserver;
  sharedMemoryDir?: string;
  tls?: TlsIdentity;
};

const DEFAULTS = {
  id: 'ps-0',
  host: '127.0.0.1',
  port: 0,
  maxPullWaitMs: 30_000,
  closeGraceMs: 5_000,
} as const;

/** A shard's default memory budget: half of what this process may use, the rest for the others. */
function defaultMaxMemory(): number {
  return Math.floor(availableMemory() / 2);
}

export function resolveShardOptions(options: ShardOptions): ResolvedShardOptions {
  // An option given as undefined takes its default, as if it were left out.
  const given = Object.entries(options).filter(([, value]) => value !== undefined);
  const o: ResolvedShardOptions = {
    ...DEFAULTS,
    maxMemoryBytes: defaultMaxMemory(),
    ...Object.fromEntries(given),
  };
  const fail = (what: string): never => {
    throw new InvalidArgumentError(`ShardOptions: ${what}`);
  };
  if (!o.id) fail('id must be a non-empty string');
  if (!o.host) fail('host must be a non-empty string');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65_535)
    fail(`port ${o.port} is not 0..65535`);
  if (!(Number.isFinite(o.maxPullWaitMs) && o.maxPullWaitMs >= 0))
    fail('maxPullWaitMs must be >= 0');
  if (!(Number.isFinite(o.closeGraceMs) && o.closeGraceMs >= 0)) fail('closeGraceMs must be >= 0');
  if (!(Number.isFinite(o.maxMemoryBytes) && o.maxMemoryBytes > 0))
    fail('maxMemoryBytes must be > 0');
  return o;
}
