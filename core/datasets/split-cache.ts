import { elementCount } from '../placement';
import { cacheFile, readCachedArrays, writeCachedArrays } from './array-cache';
import type { Dataset, DatasetSource, DatasetSplits } from './dataset';
import { splitDataset } from './split';

/** Bump whenever splitDataset's output changes (shuffle, sizes, normalization): old copies then miss. */
const SPLIT_FORMAT = 1;

const PARTS = ['train', 'trainDev', 'validation', 'test'] as const;

/** What the cached arrays need besides themselves to be a DatasetSplits again. */
interface SplitsMeta {
  featureShape: number[];
  numClasses: number;
  classNames: string[];
  counts: number[];
}

/**
 * The splits of `source`, split and normalized as splitDataset does, from a binary copy of an
 * earlier split where the source has a fingerprint: every process of a cluster loads a data set
 * on its first trial, and reading the split's copy costs a fraction of splitting again.
 */
export async function loadSplitsOf(source: DatasetSource): Promise<DatasetSplits> {
  const fingerprint = await source.fingerprint?.();
  if (fingerprint === undefined) return splitDataset(await source.load());
  // One copy per kind of source (mnist, csv): a newer split of that kind replaces the older.
  const kind = source.spec.split(':')[0];
  const file = cacheFile(
    `splits-${kind}`,
    JSON.stringify([source.spec, fingerprint, SPLIT_FORMAT]),
  );
  const cached = await readCachedArrays(file);
  const restored = cached && restore(cached.features, cached.labels, cached.meta);
  if (restored) return restored;
  const splits = splitDataset(await source.load());
  await writeCachedArrays(file, pack(splits));
  return splits;
}

/** The four parts one after another, and what it takes to cut them apart again. */
function pack(splits: DatasetSplits): { features: Float32Array; labels: Int32Array; meta: string } {
  const parts = PARTS.map((p) => splits[p]);
  const features = new Float32Array(parts.reduce((n, d) => n + d.features.length, 0));
  const labels = new Int32Array(parts.reduce((n, d) => n + d.count, 0));
  let f = 0;
  let l = 0;
  for (const part of parts) {
    features.set(part.features, f);
    labels.set(part.labels, l);
    f += part.features.length;
    l += part.count;
  }
  const { featureShape, numClasses, classNames } = splits.train;
  const meta: SplitsMeta = {
    featureShape,
    numClasses,
    classNames,
    counts: parts.map((d) => d.count),
  };
  return { features, labels, meta: JSON.stringify(meta) };
}

/** The splits again, as views of the cached arrays; undefined when the copy does not add up. */
function restore(
  features: Float32Array,
  labels: Int32Array,
  metaJson: string,
): DatasetSplits | undefined {
  let meta: SplitsMeta;
  try {
    meta = JSON.parse(metaJson) as SplitsMeta;
  } catch {
    return undefined;
  }
  const size = Array.isArray(meta.featureShape) ? elementCount(meta.featureShape) : NaN;
  const counts = Array.isArray(meta.counts) ? meta.counts : [];
  const total = counts.reduce((n, c) => n + c, 0);
  if (counts.length !== PARTS.length || total !== labels.length || total * size !== features.length)
    return undefined;
  let at = 0;
  const parts = counts.map((count): Dataset => {
    const part = {
      features: features.subarray(at * size, (at + count) * size),
      labels: labels.subarray(at, at + count),
      count,
      featureShape: [...meta.featureShape],
      numClasses: meta.numClasses,
      classNames: [...meta.classNames],
    };
    at += count;
    return part;
  });
  return { train: parts[0], trainDev: parts[1], validation: parts[2], test: parts[3] };
}
