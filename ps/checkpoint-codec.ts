import type { OptimizerConfig } from '../core/optimizer-config';
import type { CheckpointSection, TrialCheckpoint } from './trial-shard';
import { isConsistencyMode } from './trial-shard';

/** Format 1: one JSON header for every trial, then all the float data. Read, no longer written. */
const MAGIC_V1 = Buffer.from('CAVCKPT1');
/** Format 2: a section per trial (its JSON header, then its float data), written a trial at a time. */
const MAGIC_V2 = Buffer.from('CAVCKPT2');
/** Float data goes to the sink in pieces of this many bytes, with the event loop free between. */
const PIECE_BYTES = 8 << 20;

/** A checkpoint that cannot be read back: wrong magic, bad header, sizes that do not add up. */
export class CorruptCheckpointError extends Error {}

/** Where a checkpoint is written, in order. The bytes given must stay as they are until it resolves. */
export interface CheckpointSink {
  write(bytes: Uint8Array): Promise<void>;
}

/** Where a checkpoint is read from, in order. */
export interface CheckpointSource {
  /** Fills `into` with the next bytes; CorruptCheckpointError if the data ends first. */
  read(into: Uint8Array): Promise<void>;
  /** Whether every byte has been read. */
  atEnd(): Promise<boolean>;
}

interface TrialHeader {
  trial: string;
  config: OptimizerConfig;
  mode: string;
  version: number;
  batchesApplied: number;
  applySeconds: number;
  applied: number[];
  maxStaleness?: number;
  slices: Array<{ name: string; start: number; length: number; movingAverage?: number }>;
  stateSize: number;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

type TrialMeta = Omit<TrialCheckpoint, 'slices'>;

/** The fields a trial's header and its checkpoint share, as they are. */
function trialMeta(t: TrialMeta): TrialMeta {
  const { trial, config, mode, version, batchesApplied, applySeconds, applied } = t;
  const maxStaleness = t.maxStaleness ?? 0;
  return { trial, config, mode, version, batchesApplied, applySeconds, applied, maxStaleness };
}

function trialHeader(t: TrialCheckpoint): TrialHeader {
  return {
    ...trialMeta(t),
    slices: t.slices.map(({ name, start, length, movingAverage }) => ({
      name,
      start,
      length,
      ...(movingAverage === undefined ? {} : { movingAverage }),
    })),
    stateSize: t.slices[0]?.state.length ?? 0,
  };
}

/**
 * A shard's state, streamed: magic, the shard's JSON header (its id and trial count), then per
 * trial a JSON header (optimizer config, version, applied batch keys, slice ranges) and every
 * slice's values and optimizer state as raw float32, in header order. Each trial is lent only
 * while its own section is written, so the shard's other trials go on applying pushes, and no
 * model-sized buffer is made.
 */
export async function writeCheckpoint(
  sink: CheckpointSink,
  shard: string,
  sections: readonly CheckpointSection[],
): Promise<void> {
  const head = Buffer.from(JSON.stringify({ shard, trials: sections.length }));
  await sink.write(Buffer.concat([MAGIC_V2, u32(head.length), head]));
  for (const section of sections) {
    await section.lend(async (t) => {
      const json = Buffer.from(JSON.stringify(trialHeader(t)));
      await sink.write(Buffer.concat([u32(json.length), json]));
      for (const a of t.slices.flatMap((s) => [s.values, ...s.state])) {
        const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
        for (let at = 0; at < bytes.length; at += PIECE_BYTES)
          await sink.write(bytes.subarray(at, at + PIECE_BYTES));
      }
    });
  }
}

/** A length-prefixed JSON value; `bytes` is its length on disk, prefix included. */
async function readJson<T>(
  source: CheckpointSource,
  what: string,
): Promise<{ value: T; bytes: number }> {
  const length = Buffer.alloc(4);
  await source.read(length);
  const json = Buffer.alloc(length.readUInt32LE());
  await source.read(json);
  try {
    return { value: JSON.parse(json.toString()) as T, bytes: 4 + json.length };
  } catch (err) {
    throw new CorruptCheckpointError(`checkpoint ${what} is not valid JSON`, { cause: err });
  }
}

async function readFloats(source: CheckpointSource, length: number): Promise<Float32Array> {
  if (!Number.isSafeInteger(length) || length < 0)
    throw new CorruptCheckpointError(`checkpoint slice has length ${length}`);
  const out = new Float32Array(length);
  const bytes = new Uint8Array(out.buffer);
  for (let at = 0; at < bytes.length; at += PIECE_BYTES)
    await source.read(bytes.subarray(at, at + PIECE_BYTES));
  return out;
}

async function readTrial(source: CheckpointSource, t: TrialHeader): Promise<TrialCheckpoint> {
  if (!isConsistencyMode(t.mode))
    throw new CorruptCheckpointError(`trial ${t.trial} has mode ${t.mode}`);
  if (!Array.isArray(t.slices))
    throw new CorruptCheckpointError(`trial ${t.trial} has no slice list`);
  const slices: Array<TrialCheckpoint['slices'][number]> = [];
  for (const s of t.slices) {
    const values = await readFloats(source, s.length);
    const state: Float32Array[] = [];
    for (let k = 0; k < t.stateSize; k++) state.push(await readFloats(source, s.length));
    slices.push({ ...s, values, state });
  }
  return { ...trialMeta({ ...t, mode: t.mode }), slices };
}

/** Reads a checkpoint of either format; CorruptCheckpointError for anything that does not add up. */
export async function readCheckpoint(
  source: CheckpointSource,
): Promise<{ shard: string; trials: TrialCheckpoint[] }> {
  const magic = Buffer.alloc(MAGIC_V2.length);
  await source.read(magic).catch(() => {
    throw new CorruptCheckpointError('not a caviar checkpoint (too short)');
  });
  const trials: TrialCheckpoint[] = [];
  let shard: string;
  if (magic.equals(MAGIC_V1)) {
    const { value: header, bytes } = await readJson<{ shard: string; trials: TrialHeader[] }>(
      source,
      'header',
    );
    if (!Array.isArray(header.trials))
      throw new CorruptCheckpointError('checkpoint header has no trial list');
    // Format 1 aligned its float data to 4 bytes from the file's start.
    await source.read(Buffer.alloc((4 - ((MAGIC_V1.length + bytes) % 4)) % 4));
    shard = header.shard;
    for (const t of header.trials) trials.push(await readTrial(source, t));
  } else if (magic.equals(MAGIC_V2)) {
    const { value: head } = await readJson<{ shard: string; trials: number }>(source, 'header');
    if (!Number.isSafeInteger(head.trials) || head.trials < 0)
      throw new CorruptCheckpointError('checkpoint header has no trial count');
    shard = head.shard;
    for (let i = 0; i < head.trials; i++)
      trials.push(
        await readTrial(source, (await readJson<TrialHeader>(source, 'trial header')).value),
      );
  } else {
    throw new CorruptCheckpointError('not a caviar checkpoint (bad magic)');
  }
  if (!(await source.atEnd()))
    throw new CorruptCheckpointError('checkpoint data is longer than its header says');
  return { shard, trials };
}

/** A source over bytes in memory. */
export function bufferSource(buf: Uint8Array): CheckpointSource {
  let at = 0;
  return {
    read(into) {
      if (at + into.length > buf.length)
        return Promise.reject(
          new CorruptCheckpointError('checkpoint data is shorter than its header says'),
        );
      into.set(buf.subarray(at, at + into.length));
      at += into.length;
      return Promise.resolve();
    },
    atEnd: () => Promise.resolve(at === buf.length),
  };
}

/** A checkpoint as one buffer (tests, and small tools). */
export async function encodeCheckpoint(
  shard: string,
  sections: readonly CheckpointSection[],
): Promise<Buffer> {
  const parts: Buffer[] = [];
  await writeCheckpoint({ write: async (b) => void parts.push(Buffer.from(b)) }, shard, sections);
  return Buffer.concat(parts);
}

export function decodeCheckpoint(
  buf: Uint8Array,
): Promise<{ shard: string; trials: TrialCheckpoint[] }> {
  return readCheckpoint(bufferSource(buf));
}
