import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../core/errors';
import {
  CsvSource,
  MnistSource,
  SyntheticSource,
  datasetSource,
  heldOutShare,
  loadSplits,
  splitDataset,
  splitSizes,
  type Dataset,
  type DatasetSplits,
} from '../../core/datasets';
import { loadSplitsOf } from '../../core/datasets/split-cache';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-datasets-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function csvFile(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

/** Per-feature mean over a data set's examples. */
function means(data: Dataset): Float64Array {
  const size = data.features.length / data.count;
  const out = new Float64Array(size);
  for (let i = 0; i < data.features.length; i++) out[i % size] += data.features[i];
  return out.map((s) => s / data.count);
}

describe('mnist', () => {
  it('loads 10,000 28x28x1 digits in 10 classes', async () => {
    const data = await new MnistSource().load();
    assert.equal(data.count, 10_000);
    assert.deepEqual(data.featureShape, [28, 28, 1]);
    assert.equal(data.features.length, 10_000 * 784);
    assert.deepEqual(data.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.equal(new Set(data.labels).size, 10);
  });

  it('splits 5,400 + 600 train-dev / 2,000 / 2,000 with train features centred per feature', async () => {
    const splits = await loadSplits('mnist');
    assert.deepEqual(
      [splits.train.count, splits.trainDev.count, splits.validation.count, splits.test.count],
      [5_400, 600, 2_000, 2_000],
    );
    for (const m of means(splits.train)) assert.ok(Math.abs(m) < 1e-4, `feature mean ${m}`);
    assert.equal(splits.train.features.length, 5_400 * 784);
  });

  it('gives the same split every time (fixed shuffle seed)', async () => {
    const a = splitDataset(await new MnistSource().load());
    const b = splitDataset(await new MnistSource().load());
    assert.deepEqual(a.validation.labels, b.validation.labels);
    assert.deepEqual(a.test.features.subarray(0, 5_000), b.test.features.subarray(0, 5_000));
  });

  it('keeps a binary copy that loads the same digits, and rewrites a copy cut short', async () => {
    const dir = path.join(tmp, 'cache');
    const previous = process.env.CAVIAR_CACHE_DIR;
    process.env.CAVIAR_CACHE_DIR = dir;
    try {
      const parsed = await new MnistSource().load();
      const files = fs.readdirSync(dir).filter((f) => f.startsWith('mnist-'));
      assert.equal(files.length, 1, `cache files: ${files.join(', ')}`);
      const file = path.join(dir, files[0]);
      const size = fs.statSync(file).size;
      assert.equal(size, 12 + 10_000 * 4 * (1 + 784));
      const same = (data: Dataset): void => {
        assert.deepEqual(data.labels, parsed.labels);
        assert.ok(Buffer.from(data.features.buffer).equals(Buffer.from(parsed.features.buffer)));
      };
      same(await new MnistSource().load());
      fs.truncateSync(file, size - 100);
      same(await new MnistSource().load());
      assert.equal(fs.statSync(file).size, size);
    } finally {
      if (previous === undefined) delete process.env.CAVIAR_CACHE_DIR;
      else process.env.CAVIAR_CACHE_DIR = previous;
    }
  });

  it('keeps a binary copy of the normalized splits, bit for bit, and ignores a damaged one', async () => {
    const dir = path.join(tmp, 'split-cache');
    const previous = process.env.CAVIAR_CACHE_DIR;
    process.env.CAVIAR_CACHE_DIR = dir;
    try {
      const expected = splitDataset(await new MnistSource().load());
      const same = (got: DatasetSplits): void => {
        for (const part of ['train', 'trainDev', 'validation', 'test'] as const) {
          const [a, b] = [got[part], expected[part]];
          assert.equal(a.count, b.count, part);
          assert.deepEqual(a.featureShape, b.featureShape);
          assert.deepEqual(a.classNames, b.classNames);
          assert.deepEqual(a.labels, b.labels, `${part} labels`);
          assert.ok(
            Buffer.from(a.features.buffer, a.features.byteOffset, a.features.byteLength).equals(
              Buffer.from(b.features.buffer, b.features.byteOffset, b.features.byteLength),
            ),
            `${part} features`,
          );
        }
      };
      same(await loadSplitsOf(new MnistSource()));
      const files = fs.readdirSync(dir).filter((f) => f.startsWith('splits-mnist-'));
      assert.equal(files.length, 1, `cache files: ${files.join(', ')}`);
      const file = path.join(dir, files[0]);
      const size = fs.statSync(file).size;
      same(await loadSplitsOf(new MnistSource()));
      fs.truncateSync(file, size - 4 * 785);
      same(await loadSplitsOf(new MnistSource()));
      assert.equal(fs.statSync(file).size, size, 'the damaged copy was written again');

      // A CSV file that changes gets a copy of its own, not the old one's splits.
      const csv = csvFile('changing.csv', 'a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n9,10,x\n');
      const first = await loadSplitsOf(new CsvSource(csv));
      fs.appendFileSync(csv, '11,12,y\n');
      const second = await loadSplitsOf(new CsvSource(csv));
      const total = (s: DatasetSplits): number =>
        s.train.count + s.trainDev.count + s.validation.count + s.test.count;
      assert.deepEqual([total(first), total(second)], [5, 6]);
      const csvCopies = fs.readdirSync(dir).filter((f) => f.startsWith('splits-csv-'));
      assert.equal(csvCopies.length, 1, `the older copy was removed: ${csvCopies.join(', ')}`);
      assert.equal(fs.readdirSync(dir).filter((f) => f.startsWith('splits-mnist-')).length, 1);
    } finally {
      if (previous === undefined) delete process.env.CAVIAR_CACHE_DIR;
      else process.env.CAVIAR_CACHE_DIR = previous;
    }
  });

  it('memoizes loadSplits per spec', async () => {
    assert.equal(await loadSplits('mnist'), await loadSplits(' mnist '));
  });
});

describe('split', () => {
  it('uses 20% held-out shares up to 10,000 examples', () => {
    // 60% train portion, of which 10% is train-dev (never trained on).
    assert.deepEqual(splitSizes(5_000), {
      train: 2_700,
      trainDev: 300,
      validation: 1_000,
      test: 1_000,
    });
    assert.equal(heldOutShare(10_000), 0.2);
  });

  it('shrinks the share log-linearly in between', () => {
    // log10(100,000) is halfway from 10^4 to 10^6, so the share is halfway from 20% to 1%.
    assert.ok(Math.abs(heldOutShare(100_000) - 0.105) < 1e-12);
    assert.deepEqual(splitSizes(100_000), {
      train: 71_100,
      trainDev: 7_900,
      validation: 10_500,
      test: 10_500,
    });
  });

  it('uses 1% shares from 1,000,000 examples on', () => {
    // Train-dev is capped at the validation size.
    assert.deepEqual(splitSizes(2_000_000), {
      train: 1_940_000,
      trainDev: 20_000,
      validation: 20_000,
      test: 20_000,
    });
    assert.equal(heldOutShare(1_000_000), 0.01);
  });

  it('has a share in [1%, 20%], non-increasing in count, and sizes that add up', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5_000_000 }),
        fc.integer({ min: 0, max: 5_000_000 }),
        (a, b) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          assert.ok(heldOutShare(hi) <= heldOutShare(lo));
          assert.ok(heldOutShare(lo) <= 0.2 && heldOutShare(hi) >= 0.01);
          const s = splitSizes(lo);
          assert.equal(s.train + s.trainDev + s.validation + s.test, lo);
          assert.ok(s.train >= 0);
        },
      ),
    );
  });

  it('normalizes validation and test with the train statistics', () => {
    // Label = original index, so each split example can be traced back to its raw value.
    const count = 100;
    const raw = Float32Array.from({ length: count * 2 }, (_, i) => (i % 2 === 0 ? i * 3 + 7 : 5));
    const data: Dataset = {
      features: raw.slice(),
      labels: Int32Array.from({ length: count }, (_, i) => i),
      count,
      featureShape: [2],
      numClasses: count,
      classNames: [],
    };
    const { train, validation } = splitDataset(data);
    const trainRaw = Array.from(train.labels, (i) => raw[2 * i]);
    const mean = trainRaw.reduce((a, b) => a + b, 0) / trainRaw.length;
    const std = Math.sqrt(trainRaw.reduce((a, b) => a + (b - mean) ** 2, 0) / trainRaw.length);
    const i = validation.labels[0];
    assert.ok(Math.abs(validation.features[0] - (raw[2 * i] - mean) / std) < 1e-4);
    // A constant feature has std 0: it is centred, not divided by zero.
    assert.ok(validation.features.every((v, k) => k % 2 === 0 || v === 0));
  });
});

describe('csv', () => {
  it('loads a file with a named label column in the middle, classes sorted numerically', async () => {
    const file = csvFile('named.csv', 'a,digit,b\n1,10,2\n3,9,4\n5,10,6\n7,100,8\n');
    const data = await new CsvSource(file, { labelColumn: 'digit' }).load();
    assert.deepEqual(data.featureShape, [2]);
    assert.deepEqual(data.classNames, ['9', '10', '100']);
    assert.deepEqual([...data.labels], [1, 0, 1, 2]);
    assert.deepEqual([...data.features], [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('defaults to the last column and sorts string labels', async () => {
    const file = csvFile('last.csv', 'x,y,kind\n0.5,1e3,setosa\n-2,3,versicolor\n1,1,setosa\n');
    const data = await datasetSource(`csv:${file}`).load();
    assert.deepEqual(data.classNames, ['setosa', 'versicolor']);
    assert.deepEqual([...data.labels], [0, 1, 0]);
    assert.deepEqual([...data.features], [0.5, 1000, -2, 3, 1, 1]);
  });

  const rejects = (file: string, pattern: RegExp, labelColumn?: string) =>
    assert.rejects(loadSplits(`csv:${file}`, { labelColumn }), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    });

  it('names a missing file', () =>
    rejects(path.join(tmp, 'absent.csv'), /cannot read CSV file .*absent\.csv: no such file/));

  it('reports an unbalanced quote with its line', () =>
    rejects(
      csvFile('quote.csv', 'a,b\n1,"2\n3,4\n'),
      /malformed CSV file .*quote\.csv: .*Quote Not Closed.*line 3/,
    ));

  it('reports a ragged row with its line', () =>
    rejects(
      csvFile('ragged.csv', 'a,b,c\n1,2,x\n3,4\n'),
      /malformed CSV file .*ragged\.csv: .*expect 3, got 2 on line 3/,
    ));

  it('lists the columns when the label column is unknown', () =>
    rejects(
      csvFile('cols.csv', 'a,b,c\n1,2,x\n3,4,y\n'),
      /has no column "nope"; columns: a, b, c/,
      'nope',
    ));

  it('names the row and column of a non-numeric value', () =>
    rejects(
      csvFile('nan.csv', 'a,b,c\n1,2,x\n3,four,y\n'),
      /row 2 \(line 3\), column "b": "four" is not a number/,
    ));

  it('names the row and column of an empty value', () =>
    rejects(
      csvFile('blank.csv', 'a,b,c\n1,,x\n3,4,y\n'),
      /row 1 \(line 2\), column "b": is empty/,
    ));

  it('rejects an empty file and a header without rows', async () => {
    await rejects(csvFile('empty.csv', ''), /empty\.csv is empty/);
    await rejects(csvFile('header.csv', 'a,b\n'), /has a header but no data rows/);
  });

  it('rejects a single class', () =>
    rejects(
      csvFile('one.csv', 'a,b\n1,x\n2,x\n'),
      /label column "b" has 1 distinct value.*at least 2 classes/,
    ));
});

describe('datasetSource', () => {
  it('lists the accepted forms for an unknown spec', () => {
    assert.throws(
      () => datasetSource('cifar'),
      (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(
          err.message,
          /unknown data set "cifar"; expected mnist, csv:PATH, images:DIR\[@HxW\], idx:IMAGES,LABELS or synthetic:NAME/,
        );
        return true;
      },
    );
    assert.throws(() => datasetSource('csv:'), InvalidArgumentError);
  });

  it('lists the known synthetic data sets', () => {
    assert.throws(
      () => datasetSource('synthetic:moons'),
      /unknown synthetic data set "moons"; known: synthetic:spirals/,
    );
  });

  it('rejects a label column for a non-csv data set', () => {
    assert.throws(() => datasetSource('mnist', { labelColumn: 'x' }), InvalidArgumentError);
  });
});

describe('synthetic:spirals', () => {
  it('is 1,500 points in 3 balanced classes, the same every time', async () => {
    const a = await new SyntheticSource('spirals').load();
    const b = await datasetSource('synthetic:spirals').load();
    assert.equal(a.count, 1_500);
    assert.deepEqual(a.featureShape, [2]);
    assert.equal(a.numClasses, 3);
    for (let c = 0; c < 3; c++) assert.equal(a.labels.filter((l) => l === c).length, 500);
    assert.deepEqual(a.features, b.features);
    assert.deepEqual(a.labels, b.labels);
    assert.ok(a.features.every((v) => Math.abs(v) <= 1));
  });
});
