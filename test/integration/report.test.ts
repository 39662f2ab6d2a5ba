import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LocalCluster } from '../../client/local-cluster';
import type { SweepSummary } from '../../client/sweep-summary';
import type { ReportSummary } from '../../client/report/write-report';
import { lastJsonLine, runCaviar, testOutputDir } from '../helpers/repo';
import '../helpers/reaper';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

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
    const spec = path.join(out, 'tiny-sweep.yaml');
    fs.writeFileSync(
      spec,
      [
        'name: report-tiny',
        'dataset: { source: mnist }',
        'model: { type: mlp, hidden: [32] }',
        'train: { optimizer: adam, batch: 128, epochs: 1, mode: async, seed: 1 }',
        'search:',
        '  lr: { log_uniform: [1.0e-4, 1.0e-2] }',
        'budget: { trials: 2, parallel: 2, seed: 5 }',
        'objective: { maximize: val_accuracy }',
      ].join('\n') + '\n',
    );
    const sweep = await runCaviar(['sweep', spec, '--coordinator', cluster.coordinator, '--json'], {
      timeoutMs: 200_000,
    });
    assert.equal(sweep.code, 0, sweep.stderr);
    const summary = lastJsonLine<SweepSummary>(sweep.stdout);
    assert.equal(summary.trials.length, 2);
    assert.ok(summary.best, 'the sweep has a winner');

    const dir = path.join(out, 'html');
    const report = await runCaviar(
      ['report', summary.sweep, '--coordinator', cluster.coordinator, '--out', dir, '--json'],
      { timeoutMs: 120_000 },
    );
    assert.equal(report.code, 0, report.stderr);
    const written = lastJsonLine<ReportSummary>(report.stdout);
    assert.equal(written.note, undefined, 'the winner was analysed');

    const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
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
