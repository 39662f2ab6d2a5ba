import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCaviar, tempDir } from '../helpers/repo';

/** Bad input gets one clear line on stderr and exit code 2, before any cluster starts. */
async function expectUsageError(args: string[], pattern: RegExp): Promise<void> {
  const result = await runCaviar(args, { timeoutMs: 60_000 });
  assert.equal(result.code, 2, `exit code for ${args.join(' ')}: stderr ${result.stderr}`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0], pattern);
  assert.equal(result.stdout, '');
}

const dir = tempDir('cli-errors');
const good = path.join(dir, 'good.csv');
fs.writeFileSync(good, 'a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n');
const ragged = path.join(dir, 'ragged.csv');
fs.writeFileSync(ragged, 'a,b,label\n1,2,x\n3,4\n5,6,x\n');
const textValue = path.join(dir, 'text.csv');
fs.writeFileSync(textValue, 'a,b,label\n1,2,x\n3,hello,y\n');

test('unknown flag', () =>
  expectUsageError(['train', '--dataset', 'mnist', '--no-such-flag'], /unknown option/));

test('unknown command', () => expectUsageError(['frobnicate'], /unknown command/));

test('missing CSV file', () =>
  expectUsageError(
    ['train', '--dataset', `csv:${path.join(dir, 'absent.csv')}`, '--epochs', '1'],
    /absent\.csv/,
  ));

test('malformed CSV (ragged row)', () =>
  expectUsageError(
    ['train', '--dataset', `csv:${ragged}`, '--epochs', '1'],
    /ragged\.csv|line|record|column/i,
  ));

test('non-numeric CSV feature', () =>
  expectUsageError(
    ['train', '--dataset', `csv:${textValue}`, '--epochs', '1'],
    /hello|numeric|number/i,
  ));

test('unknown label column', () =>
  expectUsageError(
    ['train', '--dataset', `csv:${good}`, '--label-column', 'digit', '--epochs', '1'],
    /digit/,
  ));

test('bad model spec', () =>
  expectUsageError(['train', '--dataset', 'mnist', '--model', 'mlp:abc'], /model spec/));

test('unknown data set', () => expectUsageError(['train', '--dataset', 'imagenet'], /imagenet/));

test('bad number', () =>
  expectUsageError(['train', '--dataset', 'mnist', '--batch', '-3'], /batch|integer/));

test('bad learning-rate decay', () =>
  expectUsageError(['train', '--dataset', 'mnist', '--lr-decay', 'cosine:3'], /cosine/));

test('a sweep whose searched augmentation cannot apply to its data', () => {
  const spec = path.join(dir, 'augment-sweep.yaml');
  fs.writeFileSync(
    spec,
    [
      'name: a',
      'dataset: { source: synthetic, name: spirals }',
      'model: { type: mlp, hidden: [8] }',
      'train: { epochs: 1 }',
      'search:',
      "  augment: { choice: ['', 'flip:h'] }",
      'budget: { trials: 2 }',
    ].join('\n'),
  );
  return expectUsageError(['sweep', spec, '--etcd', 'none'], /augment flip:h moves pixels/);
});
