import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError } from '../../core/errors';
import {
  parseSweepSpec,
  readSweepSpec,
  roundSizes,
  SweepSpecError,
  TRAIN_DEFAULTS,
} from '../../core/sweep';
import { REPO_ROOT } from '../helpers/repo';

const EXAMPLE = path.join(REPO_ROOT, 'examples', 'mnist-sweep.yaml');

/** The first problem of a spec that must fail, as the one line a user sees. */
function failure(text: string, source = 'sweep.yaml'): SweepSpecError {
  try {
    parseSweepSpec(text, source);
  } catch (err) {
    assert.ok(err instanceof SweepSpecError, `not a SweepSpecError: ${String(err)}`);
    assert.ok(err instanceof InvalidArgumentError);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return err;
  }
  assert.fail(`the spec parsed:\n${text}`);
}

const BASE = ['name: t', 'dataset: { source: mnist }', 'budget: { trials: 4 }'];

describe('parseSweepSpec: the example and defaults', () => {
  it('parses examples/mnist-sweep.yaml into the sweep it describes', () => {
    const spec = readSweepSpec(EXAMPLE);
    assert.equal(spec.name, 'mnist-coarse-to-fine');
    assert.equal(spec.dataset.spec, 'mnist');
    assert.deepEqual(spec.model, { type: 'mlp', hidden: [128] });
    assert.equal(spec.train.epochs, 2);
    assert.deepEqual(spec.search, {
      lr: { kind: 'log_uniform', low: 1e-4, high: 1e-2 },
      hidden: { kind: 'choice', values: [[64], [128], [256]] },
      batch: { kind: 'choice', values: [64, 128] },
    });
    assert.deepEqual(spec.budget, { trials: 6, parallel: 3, seed: 7 });
    assert.deepEqual(spec.refine, { rounds: 1, top: 2, trials: 3 });
    assert.equal(spec.objective.metric, 'val_accuracy');
    assert.equal(spec.objective.direction, 'maximize');
    assert.deepEqual(
      spec.objective.constraints.map((c) => [c.metric, c.op, c.value]),
      [['val_loss', '<', 0.5]],
    );
    assert.equal(spec.humanError, 0.01);
    assert.deepEqual(roundSizes(spec), [6, 3]);
  });

  it('fills defaults: caviar train settings, parallel min(trials, 4), no refine, maximize val_accuracy', () => {
    const spec = parseSweepSpec(BASE.join('\n'), 'dir/small.yml');
    assert.equal(spec.name, 't');
    assert.deepEqual(spec.train, TRAIN_DEFAULTS);
    assert.deepEqual(spec.model, { type: 'mlp', hidden: [256] });
    assert.deepEqual(spec.budget, { trials: 4, parallel: 4, seed: 0 });
    assert.equal(spec.refine.rounds, 0);
    assert.deepEqual(roundSizes(spec), [4]);
    assert.deepEqual(spec.objective, {
      metric: 'val_accuracy',
      direction: 'maximize',
      constraints: [],
    });
    assert.equal(spec.earlyStopping, null);
    assert.equal(spec.humanError, null);
    const unnamed = parseSweepSpec(BASE.slice(1).join('\n'), 'dir/small.yml');
    assert.equal(unnamed.name, 'small');
  });

  it('reads the DESIGN.md example, with YAML 1.2 numbers such as 1e-4', () => {
    const spec = parseSweepSpec(
      `name: mnist-coarse-to-fine
dataset: { source: mnist }
model: { type: mlp, hidden: [256] }
train: { optimizer: adam, lr: 1e-3, batch: 128, epochs: 5, mode: async, lr_decay: "inverse:0.1" }
search:
  lr: { log_uniform: [1e-4, 1.0e-1] }
  hidden: { choice: [[64], [128], [256, 128]] }
  batch: { choice: [32, 64, 128] }
  l2: { log_uniform: [1.0e-6, 1.0e-2] }
budget: { trials: 16, parallel: 4, seed: 7 }
refine: { rounds: 1, top: 4, trials: 8 }
objective: { maximize: val_accuracy, subject_to: ["val_loss < 0.5", "params < 300000"] }
early_stopping: { patience: 2 }
human_error: 0.01
`,
      'design.yaml',
    );
    assert.deepEqual(spec.search.lr, { kind: 'log_uniform', low: 1e-4, high: 0.1 });
    assert.equal(spec.train.lr_decay, 'inverse:0.1');
    assert.deepEqual(spec.earlyStopping, { kind: 'patience', metric: 'val_accuracy', patience: 2 });
    assert.equal(spec.objective.constraints[1].value, 300_000);
  });

  it('reads JSON as well, with the same checks', () => {
    const spec = parseSweepSpec(
      JSON.stringify({
        dataset: { source: 'synthetic' },
        model: { type: 'mlp', layers: 2, hidden_units: 32 },
        search: { batch: { pow2: [16, 256] }, layers: { int: [1, 3] } },
        budget: { trials: 3 },
        early_stopping: { asha: { min_epochs: 1, reduction: 2 } },
        objective: { minimize: 'val_loss' },
      }),
      'sweep.json',
    );
    assert.equal(spec.dataset.spec, 'synthetic:spirals');
    assert.deepEqual(spec.model, { type: 'mlp', hidden: [32, 32] });
    assert.deepEqual(spec.earlyStopping, {
      kind: 'asha',
      metric: 'val_loss',
      minEpochs: 1,
      reduction: 2,
    });
    const json = JSON.stringify({ dataset: { source: 'mnist' }, budget: { trials: 0 } }, null, 2);
    assert.equal(
      failure(json, 'sweep.json').message,
      'sweep.json:6:15: budget.trials: expected an integer in [1, 100000]',
    );
  });

  it('takes csv, images and idx paths relative to the spec file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-sweep-'));
    try {
      const file = path.join(dir, 's.yaml');
      fs.writeFileSync(
        file,
        'dataset: { source: csv, path: data.csv, label_column: digit }\nbudget: { trials: 1 }\n',
      );
      const spec = readSweepSpec(file);
      assert.equal(spec.dataset.spec, `csv:${path.join(dir, 'data.csv')}`);
      assert.equal(spec.dataset.labelColumn, 'digit');
      assert.throws(() => readSweepSpec(path.join(dir, 'missing.yaml')), InvalidArgumentError);
      fs.writeFileSync(
        file,
        'dataset: { source: images, path: pics, image_size: [32, 24] }\nbudget: { trials: 1 }\n',
      );
      assert.equal(readSweepSpec(file).dataset.spec, `images:${path.join(dir, 'pics')}@32x24`);
      fs.writeFileSync(
        file,
        'dataset: { source: idx, images: x.gz, labels: /data/y.gz }\nbudget: { trials: 1 }\n',
      );
      assert.equal(readSweepSpec(file).dataset.spec, `idx:${path.join(dir, 'x.gz')},/data/y.gz`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseSweepSpec: errors name the line and the field', () => {
  it('a YAML syntax error gives file:line:col', () => {
    const err = failure(
      [...BASE, 'search:', '  lr: { log_uniform: [1e-4, 1e-2 }', 'human_error: 0.01'].join('\n'),
    );
    assert.match(err.message, /^sweep\.yaml:5:\d+: invalid YAML: /);
    assert.equal(err.problems[0].line, 5);
  });

  it('a duplicate key is a YAML error on its line', () => {
    assert.match(
      failure([...BASE, 'budget: { trials: 2 }'].join('\n')).message,
      /^sweep\.yaml:4:1: invalid YAML: Map keys must be unique/,
    );
  });

  it('an unknown key names the key and where it is', () => {
    const err = failure([...BASE, 'train:', '  lr: 0.01', '  lerning_rate: 0.1'].join('\n'));
    assert.match(
      err.message,
      /^sweep\.yaml:6:3: train\.lerning_rate: unknown key; expected one of /,
    );
    assert.match(err.message, /\blr\b.*\bbatch\b/);
    assert.match(
      failure(`${BASE.join('\n')}\nhumanerror: 0.1`).message,
      /^sweep\.yaml:4:1: humanerror: unknown key/,
    );
  });

  it('a bad domain names the domain', () => {
    const err = failure([...BASE, 'search:', '  lr: { log_uniform: [1e-2, 1e-4] }'].join('\n'));
    assert.equal(
      err.message,
      'sweep.yaml:5:22: search.lr.log_uniform: expected two numbers, low < high',
    );
    assert.match(
      failure([...BASE, 'search:', '  lr: { log_uniform: [0, 1] }'].join('\n')).message,
      /^sweep\.yaml:5:22: search\.lr\.log_uniform: a log scale needs low > 0/,
    );
    assert.match(
      failure([...BASE, 'search:', '  lr: { loguniform: [1e-4, 1] }'].join('\n')).message,
      /^sweep\.yaml:5:9: search\.lr\.loguniform: expected one of \{uniform: \[low, high\]\}/,
    );
    assert.match(
      failure([...BASE, 'search:', '  lr: 0.1'].join('\n')).message,
      /^sweep\.yaml:5:7: search\.lr: expected one of /,
    );
    assert.match(
      failure([...BASE, 'search:', '  batch: { pow2: [3, 3.5] }'].join('\n')).message,
      /search\.batch\.pow2: no power of two lies in \[3, 3\.5\]/,
    );
  });

  it("a domain must fit the setting's values", () => {
    const at = (line: string) => failure([...BASE, 'search:', `  ${line}`].join('\n')).message;
    assert.match(
      at('batch: { uniform: [16, 64] }'),
      /search\.batch\.uniform: batch takes integers/,
    );
    assert.match(
      at('beta1: { uniform: [0.8, 1] }'),
      /search\.beta1\.uniform: beta1 must be a number in \[0, 1\)/,
    );
    assert.match(
      at('optimizer: { choice: [adam, adamw] }'),
      /^sweep\.yaml:5:31: search\.optimizer\.choice\[1\]: optimizer must be one of adam/,
    );
    assert.match(
      at('hidden: { choice: [[64], [0]] }'),
      /search\.hidden\.choice\[1\]: hidden must be a non-empty list/,
    );
    assert.match(
      at('lr_decay: { choice: ["inverse:0.1", "cosine"] }'),
      /search\.lr_decay\.choice\[1\]/,
    );
  });

  it('an unknown search name is an error at its key, listing what can be searched', () => {
    const err = failure(
      [
        ...BASE,
        'search:',
        '  lr: { log_uniform: [1e-4, 1e-1] }',
        '  dropout: { uniform: [0, 0.5] }',
      ].join('\n'),
    );
    assert.match(
      err.message,
      /^sweep\.yaml:6:3: search\.dropout: unknown hyper-parameter; names under search are keys of train or model: /,
    );
    assert.match(err.message, /\blr\b.*\bhidden_units\b/);
  });

  it('checks that span fields: model searches, refine.top, constraints, objective', () => {
    const lenet = failure(
      [
        'dataset: { source: mnist }',
        'model: { type: lenet5 }',
        'budget: { trials: 2 }',
        'search:',
        '  hidden: { choice: [[64]] }',
      ].join('\n'),
    );
    assert.match(
      lenet.message,
      /^sweep\.yaml:5:3: search\.hidden: model lenet5 has no hidden layers/,
    );
    assert.match(
      failure(
        [...BASE, 'search:', '  hidden: { choice: [[64]] }', '  layers: { int: [1, 3] }'].join(
          '\n',
        ),
      ).message,
      /search\.hidden: search hidden, or layers and hidden_units, not both/,
    );
    assert.match(
      failure([...BASE, 'refine: { rounds: 1, top: 5, trials: 4 }'].join('\n')).message,
      /^sweep\.yaml:4:\d+: refine\.top: expected at most budget\.trials \(4\)/,
    );
    assert.match(
      failure(
        [
          ...BASE,
          'objective:',
          '  maximize: val_accuracy',
          '  subject_to:',
          '    - val_loss < 0.5',
          '    - latency_ms < 3',
        ].join('\n'),
      ).message,
      /^sweep\.yaml:8:7: objective\.subject_to\[1\]: constraint "latency_ms < 3": unknown metric "latency_ms"/,
    );
    assert.match(
      failure([...BASE, 'objective: { maximize: val_accuracy, minimize: val_loss }'].join('\n'))
        .message,
      /^sweep\.yaml:4:\d+: objective: give exactly one of maximize/,
    );
    assert.match(
      failure([...BASE, 'early_stopping: { patience: 2, asha: {} }'].join('\n')).message,
      /early_stopping: give exactly one of patience/,
    );
  });

  it('a missing or mistyped section names it', () => {
    assert.match(
      failure('dataset: { source: mnist }\n').message,
      /^sweep\.yaml:1:1: budget: required/,
    );
    assert.match(
      failure('dataset: { source: csv }\nbudget: { trials: 1 }\n').message,
      /^sweep\.yaml:1:10: dataset\.path: required/,
    );
    assert.match(
      failure('dataset: { source: imagenet }\nbudget: { trials: 1 }\n').message,
      /^sweep\.yaml:1:20: dataset\.source: expected one of mnist, csv, images, idx, synthetic, got "imagenet"/,
    );
    assert.match(
      failure([...BASE, 'train: { batch: "128" }'].join('\n')).message,
      /^sweep\.yaml:4:17: train\.batch: batch must be an integer in \[1, 65536\], got "128"/,
    );
    assert.match(failure('').message, /^sweep\.yaml:1:1: the spec is empty/);
    assert.match(failure('- a\n- b\n').message, /^sweep\.yaml:1:1: expected a mapping, got a list/);
  });

  it('reports the first problem in file order and lists them all', () => {
    const err = failure(
      ['dataset: { source: mnist }', 'budget: { trials: 2, paralel: 2 }', 'train: { lr: -1 }'].join(
        '\n',
      ),
    );
    assert.match(err.message, /^sweep\.yaml:2:22: budget\.paralel: unknown key/);
    assert.deepEqual(
      err.problems.map((p) => [p.line, p.field]),
      [
        [2, 'budget.paralel'],
        [3, 'train.lr'],
      ],
    );
  });
});
