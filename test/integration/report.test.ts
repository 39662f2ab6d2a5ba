import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LocalCluster } from '../../client/local-cluster';
import type { SweepSummary } from '../../client/sweep-summary';
import type { ReportSummary } from '../../client/report/write-report';
import { lastJsonLine, runCaviar, testOutputDir } from '../helpers/repo';
import { pngFile } from '../helpers/image-files';
import '../helpers/reaper';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Runs the sweep `specLines` on the cluster at `coordinator`, then `caviar report` on it into OUT/html. */
async function sweepAndReport(
  coordinator: string,
  out: string,
  specLines: string[],
): Promise<{ summary: SweepSummary; written: ReportSummary; dir: string; html: string }> {
  const spec = path.join(out, 'sweep.yaml');
  fs.writeFileSync(spec, specLines.join('\n') + '\n');
  const sweep = await runCaviar(['sweep', spec, '--coordinator', coordinator, '--json'], {
    timeoutMs: 200_000,
  });
  assert.equal(sweep.code, 0, sweep.stderr);
  const summary = lastJsonLine<SweepSummary>(sweep.stdout);
  const dir = path.join(out, 'html');
  const report = await runCaviar(
    ['report', summary.sweep, '--coordinator', coordinator, '--out', dir, '--json'],
    { timeoutMs: 120_000 },
  );
  assert.equal(report.code, 0, report.stderr);
  const written = lastJsonLine<ReportSummary>(report.stdout);
  return { summary, written, dir, html: fs.readFileSync(path.join(dir, 'index.html'), 'utf8') };
}

test(
  'caviar report SWEEP --out DIR writes the HTML report, its charts and the winner error analysis',
  { timeout: 300_000 },
  async () => {
    const out = testOutputDir('report');
    await using cluster = await new LocalCluster({
      workers: 2,
      shards: 2,
      backend: 'cpu',
      etcd: 'none',
      logDir: path.join(out, 'logs'),
    }).start();
    const { summary, written, dir, html } = await sweepAndReport(cluster.coordinator, out, [
      'name: report-tiny',
      'dataset: { source: mnist }',
      'model: { type: mlp, hidden: [32] }',
      'train: { optimizer: adam, batch: 128, epochs: 1, mode: async, seed: 1 }',
      'search:',
      '  lr: { log_uniform: [1.0e-4, 1.0e-2] }',
      'budget: { trials: 2, parallel: 2, seed: 5 }',
      'objective: { maximize: val_accuracy }',
    ]);
    assert.equal(summary.trials.length, 2);
    assert.ok(summary.best, 'the sweep has a winner');
    assert.equal(written.note, undefined, 'the winner was analysed');
    for (const t of summary.trials)
      assert.ok(html.includes(t.trial), `index.html names ${t.trial}`);
    assert.ok(html.includes(`${summary.best.trial} (winner)`), 'the winner is marked');
    assert.equal(written.winner, summary.best.trial);

    for (const file of ['learning-curves.svg', 'scatter-lr.svg', 'confusion-matrix.svg']) {
      const svg = fs.readFileSync(path.join(dir, file), 'utf8');
      assert.match(
        svg,
        /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>\s*$/,
        file,
      );
      assert.ok(html.includes(`src="${file}"`), `index.html shows ${file}`);
    }

    const cm = written.confusion_matrix;
    assert.ok(cm && cm.length === 10 && cm.every((row) => row.length === 10), '10 x 10 counts');
    const total = cm.flat().reduce((a, b) => a + b, 0);
    assert.equal(total, written.validation_count);
    assert.equal(total, 2_000, "MNIST's validation split is 20% of 10,000");

    const images = written.files.filter((f) => f.endsWith('.png'));
    assert.ok(images.length >= 1, 'at least one wrong example as an image');
    for (const image of images) {
      const bytes = fs.readFileSync(path.join(dir, image));
      assert.ok(bytes.length > PNG_SIGNATURE.length, `${image} is not empty`);
      assert.deepEqual(bytes.subarray(0, 8), PNG_SIGNATURE, `${image} is a PNG`);
      assert.ok(html.includes(`src="${image}"`), `index.html shows ${image}`);
    }
    const first = written.wrong_examples[0];
    assert.notEqual(first.label, first.predicted, 'a wrong example is wrong');
  },
);

/** A noisy 10x10 gray PNG: stripes one way or the other, or none, with noise that blurs them. */
function noisyStripes(kind: number, seed: number): Buffer {
  return pngFile(10, 10, (x, y) => {
    const stripe = kind === 0 ? y % 2 : kind === 1 ? x % 2 : 0;
    const noise = Math.sin(seed * 12.9898 + x * 78.233 + y * 37.719) * 43758.5453;
    const v = Math.max(
      0,
      Math.min(255, 60 + 120 * stripe + ((noise - Math.floor(noise)) * 160 - 80)),
    );
    return [v, v, v];
  });
}

test(
  'caviar report on an image-folder sweep shows its confused images, per-class error and pairs, and the worst as CSV with their files',
  { timeout: 300_000 },
  async () => {
    const out = testOutputDir('report-images');
    const data = path.join(out, 'stripes');
    const classes = ['horizontal', 'vertical', 'plain'];
    classes.forEach((c, kind) => {
      fs.mkdirSync(path.join(data, c), { recursive: true });
      for (let i = 0; i < 40; i++)
        fs.writeFileSync(path.join(data, c, `${i}.png`), noisyStripes(kind, kind * 100 + i));
    });
    await using cluster = await new LocalCluster({
      workers: 1,
      shards: 1,
      backend: 'cpu',
      etcd: 'none',
      logDir: path.join(out, 'logs'),
    }).start();
    const { written, dir, html } = await sweepAndReport(cluster.coordinator, out, [
      'name: report-images',
      `dataset: { source: images, path: ${JSON.stringify(data)} }`,
      'model: { type: mlp, hidden: [4] }',
      'train: { optimizer: adam, lr: 1.0e-3, batch: 16, epochs: 1, mode: async, seed: 1 }',
      'budget: { trials: 1 }',
    ]);
    assert.equal(written.note, undefined, written.note);
    assert.equal(written.class_errors?.length, 3);
    const errors = written.class_errors!.reduce((n, e) => n + e.errors, 0);
    assert.ok(errors > 0, 'one epoch of a 4-unit MLP on noisy stripes makes mistakes');
    assert.equal(
      written.confused_pairs!.reduce((n, p) => n + p.count, 0) <= errors,
      true,
      'pairs count only errors',
    );
    const images = written.files.filter((f) => f.endsWith('.png'));
    assert.ok(images.length >= 1, 'confused examples are shown as images');
    for (const image of images) assert.ok(html.includes(`src="${image}"`), image);
    // Each worst example names its file, whose folder is its true class.
    const rows = fs.readFileSync(path.join(dir, 'wrong-examples.csv'), 'utf8').trim().split('\n');
    assert.equal(rows[0], 'rank,example,source,true,predicted,p_predicted,p_true');
    assert.equal(rows.length - 1, written.wrong_examples.length);
    for (const e of written.wrong_examples) {
      const source = (e as { source?: string }).source ?? '';
      assert.ok(fs.existsSync(source), `${source} is the example's file`);
      // Classes are the folders in name order.
      assert.equal(path.basename(path.dirname(source)), [...classes].sort()[e.label]);
      assert.ok(html.includes(source), 'the page names the file');
    }
  },
);
