import { createHash } from 'node:crypto';
import type { OptimizerConfig } from '../core/optimizer-config';
import type { TrialCheckpoint } from './trial-shard';
import { isConsistencyMode } from './trial-shard';

const MAGIC = Buffer.from('CAVCKPT1');

/** A checkpoint that cannot be read back: wrong magic, bad header, sizes that do not add up. */
export class CorruptCheckpointError extends Error {}

interface TrialHeader {
  trial: string;
  config: OptimizerConfig;
  mode: string;
  version: number;
  batchesApplied: number;
  applySeconds: number;
  applied: number[];
  slices: Array<{ name: string; start: number; length: number }>;
  stateSize: number;
}

interface Header {
  shard: string;
  trials: TrialHeader[];
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A shard's state as one buffer: magic, a JSON header (ids, optimizer configs, versions, applied
 * batch keys, slice ranges), then every slice's values and optimizer state as raw float32, in
 * header order. Float data starts 4-byte aligned so it decodes without copying twice.
 */
export function encodeCheckpoint(shard: string, trials: readonly TrialCheckpoint[]): Buffer {
  const header: Header = {
    shard,
    trials: trials.map((t) => ({
      trial: t.trial,
      config: t.config,
      mode: t.mode,
      version: t.version,
      batchesApplied: t.batchesApplied,
      applySeconds: t.applySeconds,
      applied: t.applied,
      slices: t.slices.map(({ name, start, length }) => ({ name, start, length })),
      stateSize: t.slices[0]?.state.length ?? 0,
    })),
  };
  const json = Buffer.from(JSON.stringify(header));
  const prefix = MAGIC.length + 4 + json.length;
  const pad = (4 - (prefix % 4)) % 4;
  const arrays = trials.flatMap((t) => t.slices.flatMap((s) => [s.values, ...s.state]));
  const body = arrays.reduce((n, a) => n + a.byteLength, 0);
  const out = Buffer.alloc(prefix + pad + body);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(json.length, MAGIC.length);
  json.copy(out, MAGIC.length + 4);
  let at = prefix + pad;
  for (const a of arrays) {
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(out, at);
    at += a.byteLength;
  }
  return out;
}

function parseHeader(buf: Buffer): { header: Header; dataStart: number } {
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new CorruptCheckpointError('not a caviar checkpoint (bad magic)');
  }
  const length = buf.readUInt32LE(MAGIC.length);
  const end = MAGIC.length + 4 + length;
  if (end > buf.length)
    throw new CorruptCheckpointError('checkpoint header runs past the end of the file');
  let header: Header;
  try {
    header = JSON.parse(buf.subarray(MAGIC.length + 4, end).toString()) as Header;
  } catch (err) {
    throw new CorruptCheckpointError('checkpoint header is not valid JSON', { cause: err });
  }
  if (!Array.isArray(header.trials))
    throw new CorruptCheckpointError('checkpoint header has no trial list');
  return { header, dataStart: end + ((4 - (end % 4)) % 4) };
}

export function decodeCheckpoint(buf: Buffer): { shard: string; trials: TrialCheckpoint[] } {
  const { header, dataStart } = parseHeader(buf);
  let at = dataStart;
  const take = (length: number): Float32Array => {
    const bytes = length * 4;
    if (!Number.isInteger(length) || length < 0 || at + bytes > buf.length) {
      throw new CorruptCheckpointError('checkpoint data is shorter than its header says');
    }
    const out = new Float32Array(length);
    new Uint8Array(out.buffer).set(buf.subarray(at, at + bytes));
    at += bytes;
    return out;
  };
  const trials = header.trials.map((t): TrialCheckpoint => {
    if (!isConsistencyMode(t.mode))
      throw new CorruptCheckpointError(`trial ${t.trial} has mode ${t.mode}`);
    return {
      trial: t.trial,
      config: t.config,
      mode: t.mode,
      version: t.version,
      batchesApplied: t.batchesApplied,
      applySeconds: t.applySeconds,
      applied: t.applied,
      slices: t.slices.map((s) => ({
        ...s,
        values: take(s.length),
        state: Array.from({ length: t.stateSize }, () => take(s.length)),
      })),
    };
  });
  if (at !== buf.length)
    throw new CorruptCheckpointError('checkpoint data is longer than its header says');
  return { shard: header.shard, trials };
}
