import type { TrialSpec } from '../proto/gen/caviar/v1/TrialSpec';
import { InvalidArgumentError } from './errors';
import { parseModelSpec, type ModelSpec } from './model-spec';
import { resolveWireOptimizerConfig, type OptimizerConfig } from './optimizer-config';
import { formatAugment, parseAugment, type Augmentation } from './augment-spec';
import { commaList } from './comma-list';
import { formatFreeze, parseFreeze, type TransferSpec } from './transfer';
import {
  parseCompression,
  parsePullCompression,
  type Compression,
  type PullCompression,
} from './compression';

/** The consistency modes as messages list them; ssp:N is bounded staleness, N in 1..MAX_STALENESS. */
export const MODE_FORMS = ['sync', 'async', 'ssp:N'] as const;
export type Mode = 'sync' | 'async' | `ssp:${number}`;
const MAX_STALENESS = 10_000;

/** A trial's mode from its wire or CLI form ("" is async); INVALID_ARGUMENT otherwise. */
export function parseMode(text: string | undefined): Mode {
  const mode = (text ?? '').trim() || 'async';
  if (mode === 'sync' || mode === 'async') return mode;
  const n = /^ssp:(\d+)$/.exec(mode)?.[1];
  if (n !== undefined && Number(n) >= 1 && Number(n) <= MAX_STALENESS) return `ssp:${Number(n)}`;
  throw new InvalidArgumentError(
    `mode "${mode}" is not one of ${MODE_FORMS.join(', ')} (N an integer in 1..${MAX_STALENESS})`,
  );
}

/** ssp:N's N: how many versions old a push's values may be; undefined for sync and async. */
export function stalenessBoundOf(mode: Mode): number | undefined {
  return mode.startsWith('ssp:') ? Number(mode.slice('ssp:'.length)) : undefined;
}

/** How a shard runs the trial: ssp applies each push on arrival, as async does, within its bound. */
export function shardModeOf(mode: Mode): 'sync' | 'async' {
  return mode === 'sync' ? 'sync' : 'async';
}

export const OVERLAP_NEEDS_ASYNC =
  'overlap computes a batch from values its own last push has not updated yet, which a sync step forbids: use mode async or ssp:N';

/** A trial's settings, checked and with every default filled in. */
export interface ResolvedTrialSpec {
  name: string;
  dataset: string;
  labelColumn: string;
  model: ModelSpec;
  modelText: string;
  optimizer: OptimizerConfig;
  batch: number;
  epochs: number;
  mode: Mode;
  seed: number;
  clipNorm: number;
  augment: Augmentation;
  compress: Compression;
  compressPull: PullCompression;
  /** Workers compute a batch while the push before it travels (async and ssp only). */
  overlap: boolean;
  transfer: TransferSpec;
}

function integerIn(
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
  what: string,
): number {
  const v = value === undefined || value === 0 ? fallback : value;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(
      `${what} must be an integer in ${min}..${max}, got ${String(value)}`,
    );
  }
  return v;
}

function seedOf(value: number | undefined): number {
  const v = value ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1)
    throw new InvalidArgumentError(`seed must be an integer in 0..2147483647, got ${v}`);
  return v;
}

/**
 * Checks a trial spec as received from a client (proto3 leaves unset numbers at 0 and strings
 * empty, so those mean "default"): batch 128, epochs 5, mode async, model mlp:256.
 */
export function resolveTrialSpec(spec: TrialSpec): ResolvedTrialSpec {
  const dataset = (spec.dataset ?? '').trim();
  if (!dataset)
    throw new InvalidArgumentError(
      'a trial needs a data set (mnist, csv:PATH, images:DIR, idx:IMAGES,LABELS or synthetic:NAME)',
    );
  const modelText = (spec.model ?? '').trim() || 'mlp:256';
  const mode = parseMode(spec.mode);
  const clipNorm = Number(spec.clip_norm ?? 0);
  if (!Number.isFinite(clipNorm) || clipNorm < 0)
    throw new InvalidArgumentError('clip norm must be a non-negative number');
  const overlap = spec.overlap === true;
  if (overlap && mode === 'sync') throw new InvalidArgumentError(OVERLAP_NEEDS_ASYNC);
  const initFrom = (spec.init_from ?? '').trim();
  const reinit = commaList(spec.reinit);
  if (reinit.length > 0 && !initFrom)
    throw new InvalidArgumentError(
      'reinit names layers to draw fresh instead of taking them from init_from, and there is no init_from',
    );
  return {
    name: (spec.name ?? '').trim(),
    dataset,
    labelColumn: (spec.label_column ?? '').trim(),
    model: parseModelSpec(modelText),
    modelText,
    optimizer: resolveWireOptimizerConfig(spec.optimizer),
    batch: integerIn(spec.batch, 128, 1, 65_536, 'batch size'),
    epochs: integerIn(spec.epochs, 5, 1, 100_000, 'epochs'),
    mode,
    seed: seedOf(spec.seed),
    clipNorm,
    augment: parseAugment(spec.augment ?? ''),
    compress: parseCompression(spec.compress),
    compressPull: parsePullCompression(spec.compress_pull),
    overlap,
    transfer: {
      initFrom,
      freeze: parseFreeze(spec.freeze),
      reinit,
    },
  };
}

/** The wire form of a resolved spec, as the coordinator hands it to workers. */
export function trialSpecMessage(spec: ResolvedTrialSpec): TrialSpec {
  return {
    name: spec.name,
    dataset: spec.dataset,
    label_column: spec.labelColumn,
    model: spec.modelText,
    optimizer: spec.optimizer,
    batch: spec.batch,
    epochs: spec.epochs,
    mode: spec.mode,
    seed: spec.seed,
    clip_norm: spec.clipNorm,
    augment: formatAugment(spec.augment),
    compress: spec.compress,
    compress_pull: spec.compressPull,
    overlap: spec.overlap,
    init_from: spec.transfer.initFrom,
    freeze: formatFreeze(spec.transfer.freeze),
    reinit: spec.transfer.reinit.join(','),
  };
}
