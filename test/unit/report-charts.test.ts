import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  confusionMatrixSpec,
  isLogSpread,
  learningCurvesSpec,
  renderSvg,
  scatterSpec,
} from '../../client/report/charts';
import { escapeHtml, reportHtml } from '../../client/report/html';
import { imagePng, isImageShape } from '../../client/report/image-png';
import {
  objectiveMetric,
  type ReportData,
  type ReportTrial,
} from '../../client/report/report-data';

const point = (epoch: number, acc: number) => ({
  epoch,
  train_loss: 1 - acc,
  train_accuracy: acc,
  val_loss: 1.1 - acc,
  val_accuracy: acc - 0.01,
  train_dev_loss: 1.05 - acc,
  train_dev_accuracy: acc - 0.005,
});

const trial = (id: string, lr: number, acc: number): ReportTrial => ({
  trial: id,
  rank: 1,
  status: 'completed',
  stopReason: '',
  round: 0,
  hyper: { lr, hidden: [32] },
  model: 'mlp:32',
  best: point(2, acc),
  params: 100,
  seconds: 1,
  predictMsP95: 0.5,
  verdict: 'high bias',
  violations: '',
  history: [point(1, acc - 0.1), point(2, acc)],
  error: '',
});

describe('report charts', () => {
  it('puts a log axis only under positive values spanning a decade', () => {
    assert.equal(isLogSpread([1e-4, 3e-3]), true);
    assert.equal(isLogSpread([1, 5]), false);
    assert.equal(isLogSpread([0, 1e3]), false);
    assert.equal(isLogSpread([1e-3]), false);
  });

  it('draws a log-scaled scatter for a log-spread parameter, nominal for a list', async () => {
    const trials = [trial('a', 1e-4, 0.8), trial('b', 1e-2, 0.9)];
    const lr = scatterSpec(trials, 'lr', 'val_accuracy', 'b');
    assert.match(JSON.stringify(lr), /"scale":\{"type":"log"\}/);
    const hidden = scatterSpec(trials, 'hidden', 'val_accuracy', 'b');
    assert.match(JSON.stringify(hidden), /"type":"nominal","title":"hidden"/);
    const svg = await renderSvg(lr);
    assert.match(svg, /^<svg[\s\S]*<\/svg>$/);
  });

  it('renders the curves and the confusion matrix as SVG', async () => {
    const curves = await renderSvg(learningCurvesSpec([trial('a', 1e-3, 0.9)]));
    assert.match(curves, /validation accuracy/);
    const cm = await renderSvg(
      confusionMatrixSpec(
        [
          [5, 1],
          [2, 7],
        ],
        ['cat', 'dog'],
      ),
    );
    assert.match(cm, /<svg/);
    assert.match(cm, />7</);
  });

  it('reads the metric an objective optimizes', () => {
    assert.equal(
      objectiveMetric('maximize val_accuracy subject to val_loss < 0.5'),
      'val_accuracy',
    );
    assert.equal(objectiveMetric('minimize val_loss'), 'val_loss');
    assert.equal(objectiveMetric(''), 'val_accuracy');
  });
});

describe('report html', () => {
  it('escapes markup in every inserted value', () => {
    assert.equal(
      escapeHtml(`<a href="x">'&'</a>`),
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
    const evil = trial('<script>alert(1)</script>', 1e-3, 0.9);
    evil.hyper = { '<b>': '<i>' };
    const data: ReportData = {
      name: 'x"><img src=y>',
      kind: 'sweep',
      status: 'completed',
      objective: 'maximize val_accuracy',
      seconds: 1,
      trials: [evil],
      winner: evil.trial,
      winnerStatus: undefined,
    };
    const html = reportHtml({
      data,
      metric: 'val_accuracy',
      generatedAt: 'now',
      curves: undefined,
      scatters: [],
      winner: undefined,
      winnerNote: 'none',
    });
    assert.ok(!html.includes('<script>'), 'no live script tag');
    assert.ok(!html.includes('<img src=y>'), 'no injected image');
    assert.ok(!html.includes('<b>'), 'no injected bold');
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt; \(winner\)/);
  });
});

describe('example images', () => {
  it('encodes a grey image as a scaled PNG', () => {
    assert.equal(isImageShape([28, 28, 1]), true);
    assert.equal(isImageShape([4]), false);
    const png = imagePng([0, 1, 0.5, 0], [2, 2, 1], 3);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(png.readUInt32BE(16), 6, 'width 2 x 3');
    assert.equal(png.readUInt32BE(20), 6, 'height 2 x 3');
    assert.throws(() => imagePng([0, 1], [2, 2, 1]), RangeError);
  });
});
