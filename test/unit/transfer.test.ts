import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../core/errors';
import {
  initialParameters,
  initialSlice,
  modelParams,
  parseModelSpec,
} from '../../core/model-spec';
import { resolveTrialSpec, trialSpecMessage } from '../../core/trial-spec';
import {
  checkTransfer,
  frozenTensors,
  parseFreeze,
  paramLayers,
  trainedParams,
  transferredValues,
  type SourceTensor,
} from '../../core/transfer';

const lenet = (classes: number) => modelParams(parseModelSpec('lenet5'), [28, 28, 1], classes);
const CONVS = ['conv0/kernel', 'conv0/bias', 'conv1/kernel', 'conv1/bias'];

/** A model's tensors as a source to start from. */
function sourceOf(classes: number, seed: number): Map<string, SourceTensor> {
  const params = lenet(classes);
  const values = initialParameters(params, seed);
  return new Map(params.map((p) => [p.name, { shape: p.shape, values: values.get(p.name)! }]));
}

const invalid = (pattern: RegExp) => (err: unknown) =>
  err instanceof InvalidArgumentError && pattern.test(err.message);

describe('freeze', () => {
  it('reads none, a count, or layer names', () => {
    assert.deepEqual(parseFreeze(''), { kind: 'none' });
    assert.deepEqual(parseFreeze('0'), { kind: 'none' });
    assert.deepEqual(parseFreeze('2'), { kind: 'first', count: 2 });
    assert.deepEqual(parseFreeze(' conv0, conv1 '), { kind: 'layers', names: ['conv0', 'conv1'] });
    assert.throws(() => parseFreeze('conv 0'), invalid(/"conv 0" is not a layer name/));
    assert.throws(() => parseFreeze('1.5'), invalid(/is not a layer name/));
  });

  it('freezes the first N layers with parameters, or the named ones, every tensor of each', () => {
    const params = lenet(10);
    assert.deepEqual(paramLayers(params), ['conv0', 'conv1', 'dense0', 'dense1', 'dense2']);
    assert.deepEqual([...frozenTensors(params, parseFreeze('2'))], CONVS);
    assert.deepEqual(
      [...frozenTensors(params, parseFreeze('dense1'))],
      ['dense1/kernel', 'dense1/bias'],
    );
    const trained = trainedParams(params, frozenTensors(params, parseFreeze('2')));
    assert.deepEqual(
      trained.map((p) => p.name),
      params.map((p) => p.name).filter((n) => !CONVS.includes(n)),
    );
  });

  it('refuses a layer the model lacks (naming the ones it has) and freezing every layer', () => {
    const params = lenet(10);
    assert.throws(
      () => frozenTensors(params, parseFreeze('conv9')),
      invalid(/no layer with parameters named conv9; its layers are conv0, conv1, dense0/),
    );
    assert.throws(
      () => frozenTensors(params, parseFreeze('5')),
      invalid(/leaves nothing to train/),
    );
    assert.throws(
      () => frozenTensors(params, parseFreeze('7')),
      invalid(/leaves nothing to train/),
    );
  });

  it('refuses a layer both frozen and re-initialized, and an unknown reinit layer', () => {
    const params = lenet(10);
    assert.throws(
      () => checkTransfer(params, { freeze: parseFreeze('2'), reinit: ['conv1'] }),
      invalid(/conv1 is both frozen and re-initialized/),
    );
    assert.throws(
      () => checkTransfer(params, { freeze: parseFreeze(''), reinit: ['head'] }),
      invalid(/reinit: the model has no layer with parameters named head/),
    );
  });
});

describe('transferredValues', () => {
  it("copies a source's tensors by name and shape and draws the re-initialized head from the seed", () => {
    const params = lenet(10);
    const source = sourceOf(5, 7);
    const values = transferredValues(
      params,
      source,
      { freeze: parseFreeze('2'), reinit: ['dense2'] },
      3,
      'pre',
    );
    for (const p of params) {
      if (p.name.startsWith('dense2/')) assert.deepEqual(values.get(p.name), initialSlice(p, 3));
      else assert.deepEqual(values.get(p.name), source.get(p.name)!.values, p.name);
    }
    values.get('conv0/kernel')![0] += 1;
    assert.notEqual(
      values.get('conv0/kernel')![0],
      source.get('conv0/kernel')!.values[0],
      'a copy',
    );
  });

  it('refuses a tensor the source lacks or holds in another shape, naming the layer to re-initialize', () => {
    const params = lenet(10);
    assert.throws(
      () =>
        transferredValues(
          params,
          sourceOf(5, 7),
          { freeze: parseFreeze(''), reinit: [] },
          3,
          'pre',
        ),
      invalid(
        /cannot start from pre: dense2\/kernel is \[84, 5\] there and \[84, 10\] here; .*--reinit \(dense2\)/,
      ),
    );
    const partial = sourceOf(10, 7);
    partial.delete('dense1/bias');
    assert.throws(
      () => transferredValues(params, partial, { freeze: parseFreeze(''), reinit: [] }, 3, 'dir'),
      invalid(/dense1\/bias is not in it; name the layer in --reinit \(dense1\)/),
    );
  });
});

describe('a trial spec with transfer settings', () => {
  it('round-trips init_from, freeze and reinit, and refuses reinit without init_from', () => {
    const spec = resolveTrialSpec({
      dataset: 'mnist',
      model: 'lenet5',
      init_from: ' pre ',
      freeze: 'conv0,conv1',
      reinit: 'dense2',
    });
    assert.deepEqual(spec.transfer, {
      initFrom: 'pre',
      freeze: { kind: 'layers', names: ['conv0', 'conv1'] },
      reinit: ['dense2'],
    });
    const wire = trialSpecMessage(spec);
    assert.deepEqual([wire.init_from, wire.freeze, wire.reinit], ['pre', 'conv0,conv1', 'dense2']);
    assert.throws(
      () => resolveTrialSpec({ dataset: 'mnist', reinit: 'dense2' }),
      invalid(/there is no init_from/),
    );
  });
});
