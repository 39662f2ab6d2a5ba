import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { biasVarianceVerdict } from '../../core/sweep';

function close(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} != ${expected}`);
}

describe('biasVarianceVerdict', () => {
  it('avoidable bias: train error far above human level', () => {
    const v = biasVarianceVerdict({ train: 0.08, trainDev: 0.09, validation: 0.1 }, 0.01);
    close(v.avoidableBias, 0.07);
    close(v.variance, 0.01);
    close(v.dataMismatch, 0.01);
    assert.equal(v.largest, 'avoidable_bias');
    assert.equal(v.biasAgainstZero, false);
    assert.match(v.advice, /bigger model/);
    assert.match(v.advice, /training longer/);
    assert.match(v.advice, /better optimizer/);
    assert.match(
      v.summary,
      /^avoidable bias dominates \(avoidable bias 7\.0%, variance 1\.0%, data mismatch 1\.0%\): try a bigger model/,
    );
  });

  it('variance: train-dev error far above train error', () => {
    const v = biasVarianceVerdict({ train: 0.02, trainDev: 0.1, validation: 0.11 }, 0.01);
    assert.equal(v.largest, 'variance');
    assert.match(v.advice, /more data/);
    assert.match(v.advice, /regularization/);
  });

  it('data mismatch: validation error far above train-dev error', () => {
    const v = biasVarianceVerdict({ train: 0.02, trainDev: 0.03, validation: 0.12 }, 0.01);
    assert.equal(v.largest, 'data_mismatch');
    close(v.dataMismatch, 0.09);
    assert.match(v.advice, /more like the validation data/);
  });

  it('without human_error, avoidable bias is the train error against 0, flagged', () => {
    const v = biasVarianceVerdict({ train: 0.05, trainDev: 0.06, validation: 0.07 });
    close(v.avoidableBias, 0.05);
    assert.equal(v.humanError, null);
    assert.equal(v.biasAgainstZero, true);
    assert.equal(v.largest, 'avoidable_bias');
    assert.match(v.summary, /against 0: no human_error given/);
  });

  it('without a train-dev split, variance includes mismatch and mismatch is unknown', () => {
    const v = biasVarianceVerdict({ train: 0.02, validation: 0.1 }, 0.01);
    close(v.variance, 0.08);
    assert.ok(Number.isNaN(v.dataMismatch));
    assert.equal(v.largest, 'variance');
    assert.match(v.summary, /no train-dev split/);
  });

  it('no positive gap: nothing to do; equal gaps go to bias first', () => {
    const done = biasVarianceVerdict({ train: 0.01, trainDev: 0.01, validation: 0.01 }, 0.01);
    assert.equal(done.largest, 'none');
    assert.match(done.summary, /^no gap to close/);
    const tie = biasVarianceVerdict({ train: 0.03, trainDev: 0.05, validation: 0.05 }, 0.01);
    assert.equal(tie.largest, 'avoidable_bias');
  });
});
