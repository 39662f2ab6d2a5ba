import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { encode as encodeJpeg } from 'jpeg-js';
import { InvalidArgumentError } from '../../core/errors';
import { datasetSource, loadSplits } from '../../core/datasets';
import { tempDir } from '../helpers/repo';
import { idxFile, pngFile as png } from '../helpers/image-files';

function jpeg(width: number, height: number, value: number): Buffer {
  const data = Buffer.alloc(width * height * 4, value);
  return encodeJpeg({ width, height, data }, 100).data;
}

describe('idx:IMAGES,LABELS', () => {
  const dir = tempDir('idx');
  // 3 images of 2x3, values chosen so each pixel is recognisable: image i pixel p = 10i + p.
  const pixels = Array.from({ length: 18 }, (_, k) => 10 * Math.floor(k / 6) + (k % 6));
  fs.writeFileSync(path.join(dir, 'images'), idxFile([3, 2, 3], pixels));
  fs.writeFileSync(path.join(dir, 'labels'), idxFile([3], [2, 0, 1]));
  fs.writeFileSync(path.join(dir, 'images.gz'), gzipSync(idxFile([3, 2, 3], pixels)));
  fs.writeFileSync(path.join(dir, 'labels.gz'), gzipSync(idxFile([3], [2, 0, 1])));

  it('reads images and labels, plain and gzipped alike, scaled to [0, 1]', async () => {
    for (const [images, labels] of [
      ['images', 'labels'],
      ['images.gz', 'labels.gz'],
    ]) {
      const data = await datasetSource(
        `idx:${path.join(dir, images)},${path.join(dir, labels)}`,
      ).load();
      assert.deepEqual(data.featureShape, [2, 3, 1]);
      assert.equal(data.count, 3);
      assert.deepEqual([...data.labels], [2, 0, 1]);
      assert.equal(data.numClasses, 3);
      assert.ok(Math.abs(data.features[6 + 4] - 14 / 255) < 1e-7, 'image 1, pixel 4');
    }
  });

  it('names the file and the problem: bad magic, truncation, count mismatch, bad gzip', async () => {
    fs.writeFileSync(path.join(dir, 'text'), 'hello world');
    fs.writeFileSync(path.join(dir, 'short'), idxFile([3, 2, 3], pixels).subarray(0, 20));
    fs.writeFileSync(path.join(dir, 'two-labels'), idxFile([2], [0, 1]));
    fs.writeFileSync(path.join(dir, 'bad.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    const cases: Array<[string, RegExp]> = [
      [`${dir}/text,${dir}/labels`, /IDX file .*text: not an IDX file/],
      [
        `${dir}/short,${dir}/labels`,
        /IDX file .*short: dimensions \[3, 2, 3\] of unsigned bytes need 34 bytes, the file has 20/,
      ],
      [`${dir}/images,${dir}/two-labels`, /disagree: 3 images, 2 labels/],
      [`${dir}/bad.gz,${dir}/labels`, /IDX file .*bad\.gz: gzip data is corrupt/],
      [`${dir}/missing,${dir}/labels`, /cannot read IDX file .*missing: no such file/],
      [`${dir}/images,${dir}/images`, /labels must be one dimension/],
    ];
    for (const [files, pattern] of cases) {
      await assert.rejects(datasetSource(`idx:${files}`).load(), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, pattern);
        assert.ok(!err.message.includes('\n'));
        return true;
      });
    }
    assert.throws(() => datasetSource(`idx:${dir}/images`), /idx: takes two files, IMAGES,LABELS/);
  });
});

describe('images:DIR', () => {
  it('one class per sub-folder, PNG and JPEG; gray images give one channel, colour three', async () => {
    const dir = tempDir('images-gray');
    fs.mkdirSync(path.join(dir, 'dark'));
    fs.mkdirSync(path.join(dir, 'light'));
    fs.writeFileSync(
      path.join(dir, 'dark', 'a.png'),
      png(4, 3, (x) => [10 * x, 10 * x, 10 * x]),
    );
    fs.writeFileSync(path.join(dir, 'light', 'b.jpg'), jpeg(4, 3, 200));
    fs.writeFileSync(path.join(dir, 'light', 'notes.txt'), 'not an image');
    const data = await datasetSource(`images:${dir}`).load();
    assert.deepEqual(data.classNames, ['dark', 'light']);
    assert.deepEqual([...data.labels], [0, 1]);
    assert.deepEqual(data.featureShape, [3, 4, 1]);
    assert.ok(Math.abs(data.features[2] - 20 / 255) < 1e-6, 'a.png, pixel (2, 0)');
    assert.ok(Math.abs(data.features[12] - 200 / 255) < 3 / 255, 'b.jpg, nearly lossless');

    const colour = tempDir('images-colour');
    for (const c of ['red', 'blue']) fs.mkdirSync(path.join(colour, c));
    fs.writeFileSync(
      path.join(colour, 'red', '1.png'),
      png(2, 2, () => [255, 0, 0]),
    );
    fs.writeFileSync(
      path.join(colour, 'blue', '1.png'),
      png(2, 2, () => [0, 0, 255]),
    );
    const rgb = await datasetSource(`images:${colour}`).load();
    assert.deepEqual(rgb.featureShape, [2, 2, 3]);
    assert.deepEqual([...rgb.features.subarray(0, 3)], [0, 0, 1], 'blue sorts first');
  });

  it('resizes to @HxW (the CLI --image-size), else refuses mixed sizes naming the file', async () => {
    const dir = tempDir('images-sizes');
    for (const c of ['a', 'b']) fs.mkdirSync(path.join(dir, c));
    fs.writeFileSync(
      path.join(dir, 'a', '1.png'),
      png(4, 4, (x) => [x * 80, x * 80, x * 80]),
    );
    fs.writeFileSync(
      path.join(dir, 'b', '1.png'),
      png(8, 2, () => [255, 255, 255]),
    );
    await assert.rejects(
      datasetSource(`images:${dir}`).load(),
      /images:.*: b\/1\.png is 2x8, the first image 4x4; give a size to resize them all \(--image-size HxW\)/,
    );
    const data = await datasetSource(`images:${dir}@2x2`).load();
    assert.deepEqual(data.featureShape, [2, 2, 1]);
    // 4 columns to 2: each output column is the mean of two inputs (half-pixel centres).
    assert.ok(Math.abs(data.features[0] - 40 / 255) < 1e-6, `got ${data.features[0] * 255}`);
    assert.ok(Math.abs(data.features[1] - 200 / 255) < 1e-6, `got ${data.features[1] * 255}`);
    assert.deepEqual([...data.features.subarray(4)], [1, 1, 1, 1]);
  });

  it('an undecodable file, a missing folder, too few classes: one line naming the place', async () => {
    const dir = tempDir('images-bad');
    for (const c of ['a', 'b']) fs.mkdirSync(path.join(dir, c));
    fs.writeFileSync(
      path.join(dir, 'a', '1.png'),
      png(2, 2, () => [1, 2, 3]),
    );
    fs.writeFileSync(path.join(dir, 'b', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\nxxxx'));
    await assert.rejects(
      datasetSource(`images:${dir}`).load(),
      /images:.*: cannot decode b\/broken\.png: /,
    );
    await assert.rejects(
      datasetSource(`images:${dir}/nope`).load(),
      /cannot read the folder: no such file/,
    );
    const one = tempDir('images-one-class');
    fs.mkdirSync(path.join(one, 'only'));
    await assert.rejects(datasetSource(`images:${one}`).load(), /at least 2\), found 1/);
  });

  it('splits by the rule of thumb and normalizes with train statistics, like every source', async () => {
    const dir = tempDir('images-split');
    for (const c of ['a', 'b']) fs.mkdirSync(path.join(dir, c));
    for (let i = 0; i < 20; i++)
      fs.writeFileSync(
        path.join(dir, i % 2 ? 'a' : 'b', `${i}.png`),
        png(3, 3, () => [i * 10, i * 10, i * 10]),
      );
    const splits = await loadSplits(`images:${dir}`);
    assert.deepEqual(
      [splits.train.count, splits.trainDev.count, splits.validation.count, splits.test.count],
      [11, 1, 4, 4],
    );
    const mean = splits.train.features.reduce((s, v) => s + v, 0) / splits.train.features.length;
    assert.ok(Math.abs(mean) < 1e-5, `train features have mean ${mean}`);
  });
});
