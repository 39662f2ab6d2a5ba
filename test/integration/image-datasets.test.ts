import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { TrainSummary } from '../../client/summary';
import { loadSplits } from '../../core/datasets';
import { lastJsonLine, runCaviar, tempDir } from '../helpers/repo';
import { idxFile, pngFile } from '../helpers/image-files';
import { trainCompleted } from '../helpers/train-run';

/**
 * Image data as users have it, through the CLI: a folder of PNGs per class (of two sizes, so
 * --image-size resizes them) and the MNIST digits written out as gzipped IDX files.
 */

function stripes(size: number, vertical: boolean, seed: number): Buffer {
  return pngFile(size, size, (x, y) => {
    const on = ((vertical ? x : y) + seed) % 4 < 2;
    const noise = (Math.sin(seed * 31.7 + x * 7.1 + y * 3.3) + 1) * 30;
    const v = Math.min(255, (on ? 180 : 20) + noise);
    return [v, v, v];
  });
}

test(
  'caviar train --dataset images:DIR --image-size: a folder of PNGs per class trains; a broken file is one line, exit 2',
  { timeout: 180_000 },
  async () => {
    const dir = tempDir('image-folder');
    for (const cls of ['horizontal', 'vertical']) fs.mkdirSync(path.join(dir, cls));
    for (let i = 0; i < 60; i++) {
      const vertical = i % 2 === 1;
      const file = path.join(dir, vertical ? 'vertical' : 'horizontal', `${i}.png`);
      fs.writeFileSync(file, stripes(i % 3 === 0 ? 16 : 12, vertical, i));
    }
    const args = (dataset: string) => [
      'train',
      '--local',
      '--workers',
      '1',
      '--shards',
      '1',
      '--etcd',
      'none',
      '--dataset',
      dataset,
      '--model',
      'mlp:32',
      '--epochs',
      '8',
      '--batch',
      '8',
      '--lr',
      '3e-3',
      '--json',
    ];
    const mixed = await runCaviar(args(`images:${dir}`), { timeoutMs: 60_000 });
    assert.equal(mixed.code, 2, mixed.stderr);
    assert.match(mixed.stderr.trim(), /is 12x12, the first image 16x16; give a size/);
    const result = await runCaviar([...args(`images:${dir}`), '--image-size', '12x12'], {
      timeoutMs: 150_000,
    });
    assert.equal(result.code, 0, result.stderr);
    const summary = lastJsonLine<TrainSummary>(result.stdout);
    assert.equal(summary.status, 'completed');
    assert.ok(
      summary.val_accuracy !== null && summary.val_accuracy >= 0.9,
      `${summary.val_accuracy}`,
    );

    // Mirroring and small crops keep a stripe's direction: augmented, it still learns.
    const augmented = await runCaviar(
      [...args(`images:${dir}`), '--image-size', '12x12', '--augment', 'flip:hv,crop:1'],
      { timeoutMs: 150_000 },
    );
    assert.equal(augmented.code, 0, augmented.stderr);
    const withAugment = lastJsonLine<TrainSummary>(augmented.stdout);
    assert.equal(withAugment.status, 'completed');
    assert.ok(
      withAugment.val_accuracy !== null && withAugment.val_accuracy >= 0.9,
      `${withAugment.val_accuracy}`,
    );
    for (const [flags, pattern] of [
      [[...args(`images:${dir}`), '--augment', 'blur:3'], /augment "blur:3": unknown/],
      [[...args('synthetic:spirals'), '--augment', 'flip:h'], /moves pixels and needs images/],
    ] as const) {
      const bad = await runCaviar([...flags], { timeoutMs: 60_000 });
      assert.equal(bad.code, 2, bad.stderr);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      assert.match(bad.stderr.trim(), pattern);
    }

    fs.writeFileSync(path.join(dir, 'vertical', 'broken.png'), 'not a png at all');
    const broken = await runCaviar([...args(`images:${dir}`), '--image-size', '12x12'], {
      timeoutMs: 60_000,
    });
    assert.equal(broken.code, 2, broken.stderr);
    const lines = broken.stderr.trim().split('\n');
    assert.equal(lines.length, 1, broken.stderr);
    assert.match(lines[0], /cannot decode vertical\/broken\.png: not a PNG or JPEG file/);
  },
);

test(
  'caviar train --dataset idx:IMAGES,LABELS: MNIST written as gzipped IDX files trains like the mnist package',
  { timeout: 180_000 },
  async () => {
    const dir = tempDir('idx-mnist');
    const { train } = await loadSplits('mnist');
    const count = 2000;
    // Back to bytes: the split is normalized, so undo it roughly; the values only need to
    // carry the digits' shapes.
    const pixels = new Uint8Array(count * 784);
    for (let i = 0; i < pixels.length; i++) pixels[i] = train.features[i] > 0 ? 255 : 0;
    const images = path.join(dir, 'train-images-idx3-ubyte.gz');
    const labels = path.join(dir, 'train-labels-idx1-ubyte.gz');
    fs.writeFileSync(images, gzipSync(idxFile([count, 28, 28], pixels)));
    fs.writeFileSync(labels, gzipSync(idxFile([count], train.labels.subarray(0, count))));
    const summary = await trainCompleted(
      [
        '--local',
        '--etcd',
        'none',
        '--dataset',
        `idx:${images},${labels}`,
        '--model',
        'mlp:64',
        '--epochs',
        '3',
      ],
      { timeoutMs: 150_000 },
    );
    assert.ok(
      summary.val_accuracy !== null && summary.val_accuracy >= 0.8,
      `${summary.val_accuracy}`,
    );
  },
);
