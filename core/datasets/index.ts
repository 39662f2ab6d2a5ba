import { InvalidArgumentError } from '../errors';
import { CsvSource } from './csv';
import type { DatasetSource, DatasetSplits } from './dataset';
import { MnistSource } from './mnist';
import { loadSplitsOf } from './split-cache';
import { SyntheticSource } from './spirals';

export type { Dataset, DatasetSource, DatasetSplits } from './dataset';
export { CsvSource, type CsvOptions } from './csv';
export { MnistSource } from './mnist';
export { SYNTHETIC_NAMES, SyntheticSource } from './spirals';
export { heldOutShare, splitDataset, splitSizes, type SplitSizes } from './split';

export interface DatasetOptions {
  /** For csv:PATH, the label column. Defaults to the last column. */
  labelColumn?: string;
}

const FORMS = 'expected mnist, csv:PATH or synthetic:NAME';

/** The source named by a `--dataset` value: `mnist`, `csv:PATH` or `synthetic:NAME`. */
export function datasetSource(spec: string, options: DatasetOptions = {}): DatasetSource {
  const text = spec.trim();
  if (options.labelColumn !== undefined && !text.startsWith('csv:')) {
    throw new InvalidArgumentError(
      `a label column applies only to csv:PATH data sets, not "${text}"`,
    );
  }
  if (text === 'mnist') return new MnistSource();
  if (text.startsWith('csv:') && text.length > 4) {
    return new CsvSource(text.slice(4), { labelColumn: options.labelColumn });
  }
  if (text.startsWith('synthetic:')) return new SyntheticSource(text.slice('synthetic:'.length));
  throw new InvalidArgumentError(`unknown data set "${spec}"; ${FORMS}`);
}

// One load per (spec, label column) per process: every trial on a worker shares the arrays.
const loaded = new Map<string, Promise<DatasetSplits>>();

/** The splits of a data set, loaded, split and normalized once per process. Treat them as read-only. */
export function loadSplits(spec: string, options: DatasetOptions = {}): Promise<DatasetSplits> {
  const key = JSON.stringify([spec.trim(), options.labelColumn ?? null]);
  let splits = loaded.get(key);
  if (!splits) {
    splits = (async () => loadSplitsOf(datasetSource(spec, options)))();
    // A failed load is not cached: the file may be fixed and the call retried.
    splits.catch(() => loaded.delete(key));
    loaded.set(key, splits);
  }
  return splits;
}

/**
 * Throws the InvalidArgumentError a bad spec, a missing file or a malformed CSV would cause, so
 * the CLI can report it in one line before it launches a cluster.
 */
export async function validateDatasetSpec(
  spec: string,
  options: DatasetOptions = {},
): Promise<void> {
  await loadSplits(spec, options);
}
