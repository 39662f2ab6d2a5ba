import { InvalidArgumentError } from '../errors';
import { CsvSource } from './csv';
import { IdxSource } from './idx';
import { ImageFolderSource, parseImagesSpec } from './image-folder';
import type { DatasetSource, DatasetSplits } from './dataset';
import { MnistSource } from './mnist';
import { loadSplitsOf } from './split-cache';
import { SyntheticSource } from './spirals';

export type { Dataset, DatasetSource, DatasetSplits } from './dataset';
export { CsvSource, type CsvOptions } from './csv';
export { IdxSource } from './idx';
export { ImageFolderSource, type ImageSize } from './image-folder';
export { MnistSource } from './mnist';
export { SYNTHETIC_NAMES, SyntheticSource } from './spirals';
export { heldOutShare, splitDataset, splitSizes, type SplitSizes } from './split';

export interface DatasetOptions {
  /** For csv:PATH, the label column. Defaults to the last column. */
  labelColumn?: string;
}

const FORMS = 'expected mnist, csv:PATH, images:DIR[@HxW], idx:IMAGES,LABELS or synthetic:NAME';

/**
 * The source named by a `--dataset` value: `mnist`, `csv:PATH`, `images:DIR` (a folder per
 * class; `@HxW` resizes), `idx:IMAGES,LABELS` (IDX files, gzipped or not) or `synthetic:NAME`.
 */
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
  if (text.startsWith('images:') && text.length > 7) {
    const { dir, size } = parseImagesSpec(text.slice(7));
    return new ImageFolderSource(dir, size);
  }
  if (text.startsWith('idx:')) {
    const files = text.slice(4).split(',');
    if (files.length !== 2 || files.some((f) => f.trim() === ''))
      throw new InvalidArgumentError(
        `data set "${spec}": idx: takes two files, IMAGES,LABELS (e.g. idx:train-images-idx3-ubyte.gz,train-labels-idx1-ubyte.gz)`,
      );
    return new IdxSource(files[0].trim(), files[1].trim());
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
