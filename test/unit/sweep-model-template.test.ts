import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from '../../core/errors';
import { ModelSpecError } from '../../core/model-graph/parse-graph';
import { modelParams, parameterCount, parseModelSpec } from '../../core/model-spec';
import {
  applyHyper,
  parseSweepSpec,
  readSweepSpec,
  sampleTrials,
  SweepSpecError,
} from '../../core/sweep';
import { REPO_ROOT, tempDir } from '../helpers/repo';

const HEAD = ['name: t', 'dataset: { source: mnist }', 'budget: { trials: 4 }'];

/** A sweep spec whose model is the inline template `model` (YAML lines under `model:`). */
function specText(model: string[], search: string[]): string {
  return [
    ...HEAD,
    'model:',
    ...model.map((l) => `  ${l}`),
    'search:',
    ...search.map((l) => `  ${l}`),
  ].join('\n');
}

const CONV = [
  'type: graph',
  'input: [28, 28, 1]',
  'layers:',
  '  - { type: conv2d, filters: $filters, kernel: $kernel, padding: valid }',
  '  - { type: max_pool, size: 2 }',
  '  - { type: flatten }',
  '  - { type: dropout, rate: $dropout }',
];

function failure(text: string): SweepSpecError {
  try {
    parseSweepSpec(text, 'sweep.yaml');
  } catch (err) {
    assert.ok(err instanceof SweepSpecError, `not a SweepSpecError: ${String(err)}`);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return err;
  }
  assert.fail(`the spec parsed:\n${text}`);
}

describe("sweeps over a model graph's placeholders", () => {
  it("fills each trial's placeholders from its sampled values; the model is the graph it makes", () => {
    const spec = parseSweepSpec(
      specText(
        [...CONV, 'defaults: { dropout: 0.25 }'],
        [
          'filters: { pow2: [4, 16] }',
          'kernel: { choice: [3, 5] }',
          'lr: { log_uniform: [1e-4, 1e-2] }',
        ],
      ),
      'sweep.yaml',
    );
    const hypers = sampleTrials(spec.search, 6, 3);
    for (const hyper of hypers) {
      const { model, trialSpec, train } = applyHyper(spec, hyper, 'x');
      assert.equal(train.lr, hyper.lr);
      assert.equal(model.type, 'graph');
      const sent = parseModelSpec(trialSpec.model ?? '');
      assert.deepEqual(sent, model, 'the trial carries the instantiated graph');
      if (model.type !== 'graph') continue;
      const conv = model.graph.layers[0];
      assert.ok(
        conv.type === 'conv2d' && conv.filters === hyper.filters && conv.kernel === hyper.kernel,
      );
      const dropout = model.graph.layers[3];
      assert.ok(dropout.type === 'dropout' && dropout.rate === 0.25, 'the default fills $dropout');
      // Parameter counts follow the structure: what `params < N` constraints read.
      const f = hyper.filters as number;
      const k = hyper.kernel as number;
      const side = Math.floor((28 - k + 1) / 2);
      assert.equal(
        parameterCount(modelParams(model, [28, 28, 1], 10)),
        k * k * f + f + side * side * f * 10 + 10,
      );
    }
    assert.ok(new Set(hypers.map((h) => h.filters)).size > 1, 'filters vary across trials');
  });

  it('a placeholder may stand for a whole list of layers, a block count or a preset', () => {
    const lists = parseSweepSpec(
      specText(
        ['type: graph', 'input: [28, 28, 1]', 'layers: $body'],
        [
          'body:',
          '    choice:',
          '      - [{ type: flatten }, { type: dense, units: 32 }]',
          '      - [{ type: conv2d, filters: 4, kernel: 3 }, { type: global_avg_pool }]',
        ],
      ),
      'sweep.yaml',
    );
    const kinds = ['flatten', 'conv2d'].map((first, i) => {
      const { model } = applyHyper(lists, {
        body: (lists.search.body as { values: unknown[] }).values[i] as never,
      });
      assert.ok(model.type === 'graph' && model.graph.layers[0].type === first);
      return first;
    });
    assert.equal(kinds.length, 2);
    const repeat = parseSweepSpec(
      specText(
        [
          'type: graph',
          'input: [28, 28, 1]',
          'layers:',
          '  - { type: conv2d, filters: 4, kernel: 3, padding: same }',
          '  - { type: residual, repeat: $blocks, layers: [{ type: conv2d, filters: 4, kernel: 3, padding: same }] }',
        ],
        ['blocks: { int: [1, 3] }'],
      ),
      'sweep.yaml',
    );
    const counts = [1, 3].map((blocks) =>
      parameterCount(modelParams(applyHyper(repeat, { blocks }).model, [28, 28, 1], 10)),
    );
    assert.equal(counts[1] - counts[0], 2 * (9 * 4 * 4 + 4), 'each block adds one conv');
    const presets = parseSweepSpec(
      specText(['type: graph', 'preset: $arch'], ['arch: { choice: ["resnet:1", "vgg:small"] }']),
      'sweep.yaml',
    );
    assert.equal(applyHyper(presets, { arch: 'resnet:1' }).trialSpec.model, 'resnet:1');
  });

  it('refuses, at its place in the file, a placeholder with no value and an extreme that makes no model', () => {
    assert.match(
      failure(specText(CONV, ['filters: { pow2: [4, 16] }', 'kernel: { choice: [3] }'])).message,
      /^sweep\.yaml:11:\d+: model\.layers\[3\]\.rate: placeholder \$dropout is neither searched nor given under model\.defaults$/,
    );
    const big = failure(
      specText(
        [...CONV, 'defaults: { dropout: 0.1 }'],
        ['filters: { pow2: [4, 16] }', 'kernel: { choice: [3, 40] }'],
      ),
    );
    assert.match(big.message, /^sweep\.yaml:8:\d+: model\.layers\[0\]/);
    assert.match(big.message, /kernel = 40/);
    const rate = failure(
      specText(CONV, [
        'filters: { pow2: [4, 16] }',
        'kernel: { choice: [3] }',
        'dropout: { uniform: [0, 1.5] }',
      ]),
    );
    assert.match(
      rate.message,
      /model\.layers\[3\]\.rate: with .*dropout = 1\.5: expected a rate in \[0, 1\)/,
    );
    const preset = failure(
      specText(['type: graph', 'preset: $arch'], ['arch: { choice: ["resnet:1", "model.yaml"] }']),
    );
    assert.match(preset.message, /model\.preset: with arch = "model\.yaml": expected a preset/);
  });

  it('refuses search names that are neither train settings nor placeholders, and placeholders named as train settings', () => {
    const unknown = failure(
      specText(
        [...CONV, 'defaults: { dropout: 0.1, kernel: 3 }'],
        ['filters: { pow2: [4, 16] }', 'hidden_units: { int: [1, 3] }'],
      ),
    );
    assert.match(
      unknown.message,
      /search\.hidden_units: unknown hyper-parameter; .*placeholders of the model \(\$filters, \$kernel, \$dropout\)/,
    );
    const l2 = failure(
      specText(
        ['type: graph', 'input: [4]', 'layers: [{ type: dense, units: 3, l2: $l2 }]'],
        ['l2: { log_uniform: [1e-5, 1e-2] }'],
      ),
    );
    assert.match(
      l2.message,
      /search\.l2: \$l2 is a placeholder of the model and the train setting l2: rename the placeholder/,
    );
    const stray = failure(
      specText(
        [...CONV, 'defaults: { dropout: 0.1, kernel: 3, width: 2 }'],
        ['filters: { pow2: [4, 16] }'],
      ),
    );
    assert.match(stray.message, /model\.defaults\.width: the model has no placeholder \$width/);
    assert.match(
      failure(
        specText(
          ['type: graph', 'preset: resnet:1', 'layers: [{ type: flatten }]'],
          ['lr: { uniform: [0.1, 0.2] }'],
        ),
      ).message,
      /give exactly one of preset: NAME, file: PATH, layers/,
    );
  });

  it("reads a template file beside the spec; its problems name the model file's line", () => {
    const dir = tempDir('template-file');
    fs.writeFileSync(
      path.join(dir, 'net.yaml'),
      [
        'input: [28, 28, 1]',
        'layers:',
        '  - { type: conv2d, filters: 4, kernel: $kernel }',
        '  - { type: flatten }',
      ].join('\n'),
    );
    const sweep = path.join(dir, 'sweep.yaml');
    fs.writeFileSync(
      sweep,
      specText(['type: graph', 'file: net.yaml'], ['kernel: { choice: [3, 5] }']),
    );
    const spec = readSweepSpec(sweep);
    const { model } = applyHyper(spec, { kernel: 5 });
    assert.ok(
      model.type === 'graph' &&
        model.graph.layers[0].type === 'conv2d' &&
        model.graph.layers[0].kernel === 5,
    );
    fs.writeFileSync(
      sweep,
      specText(['type: graph', 'file: net.yaml'], ['kernel: { choice: [3, 29] }']),
    );
    assert.throws(
      () => readSweepSpec(sweep),
      (err: unknown) =>
        err instanceof ModelSpecError &&
        /net\.yaml:3:\d+: layers\[0\]\.kernel: with kernel = 29: /.test(err.message),
    );
  });

  it('a trial whose combination of values makes no model is refused with the values named', () => {
    const spec = parseSweepSpec(
      specText(
        [
          'type: graph',
          'input: [8, 8, 1]',
          'layers:',
          '  - { type: conv2d, filters: 2, kernel: $k1 }',
          '  - { type: conv2d, filters: 2, kernel: $k2 }',
        ],
        ['k1: { choice: [1, 5] }', 'k2: { choice: [1, 5] }'],
      ),
      'sweep.yaml',
    );
    assert.throws(
      () => applyHyper(spec, { k1: 5, k2: 5 }),
      (err: unknown) =>
        err instanceof InvalidArgumentError && /k1 = 5, k2 = 5: layers\[1\]/.test(err.message),
    );
  });

  it('parses examples/convnet-sweep.yaml', () => {
    const spec = readSweepSpec(path.join(REPO_ROOT, 'examples', 'convnet-sweep.yaml'));
    assert.equal(spec.model.type, 'template');
    for (const hyper of sampleTrials(spec.search, 4, spec.budget.seed))
      assert.equal(applyHyper(spec, hyper).model.type, 'graph');
  });
});
