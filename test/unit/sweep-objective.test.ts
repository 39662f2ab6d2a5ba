import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../core/errors';
import {
  parseConstraint,
  pickWinner,
  rankTrials,
  type Objective,
  type TrialOutcome,
} from '../../core/sweep';

function objective(
  metric: string,
  direction: Objective['direction'],
  ...constraints: string[]
): Objective {
  return { metric, direction, constraints: constraints.map(parseConstraint) };
}

const trial = (id: string, metrics: TrialOutcome['metrics']): TrialOutcome => ({
  trial: id,
  metrics,
});

describe('parseConstraint', () => {
  it('reads METRIC OP NUMBER with < <= > >=', () => {
    assert.deepEqual(parseConstraint('val_loss < 0.5'), {
      metric: 'val_loss',
      op: '<',
      value: 0.5,
      text: 'val_loss < 0.5',
    });
    assert.equal(parseConstraint('params<=3e5').value, 300_000);
    assert.equal(parseConstraint('  predict_ms_p95 >= 1 ').op, '>=');
    assert.equal(parseConstraint('val_accuracy>0.9').op, '>');
  });

  it('says what is wrong with a bad one', () => {
    assert.throws(() => parseConstraint('val_loss = 0.5'), /not METRIC OP NUMBER/);
    assert.throws(() => parseConstraint('latency < 5'), /unknown metric "latency"/);
    assert.throws(() => parseConstraint('val_loss < low'), /"low" is not a finite number/);
    assert.throws(() => parseConstraint(''), InvalidArgumentError);
  });
});

describe('pickWinner', () => {
  const acc = objective(
    'val_accuracy',
    'maximize',
    'val_loss < 0.5',
    'params < 300000',
    'predict_ms_p95 < 5',
  );

  it('a better-scoring trial that breaks a constraint loses', () => {
    const trials = [
      trial('fast-but-lossy', {
        val_accuracy: 0.99,
        val_loss: 0.7,
        params: 100_000,
        predict_ms_p95: 1,
      }),
      trial('too-big', { val_accuracy: 0.985, val_loss: 0.1, params: 400_000, predict_ms_p95: 1 }),
      trial('slow', { val_accuracy: 0.98, val_loss: 0.1, params: 100_000, predict_ms_p95: 5 }),
      trial('fits', { val_accuracy: 0.97, val_loss: 0.2, params: 200_000, predict_ms_p95: 2 }),
      trial('fits-worse', { val_accuracy: 0.96, val_loss: 0.2, params: 50_000, predict_ms_p95: 2 }),
    ];
    assert.equal(pickWinner(trials, acc)?.trial, 'fits');
  });

  it('a trial missing a constrained metric does not meet the constraint', () => {
    const trials = [
      trial('unmeasured', { val_accuracy: 0.99, val_loss: 0.1, params: 1000 }),
      trial('measured', { val_accuracy: 0.9, val_loss: 0.1, params: 1000, predict_ms_p95: 3 }),
      trial('nan', { val_accuracy: 0.95, val_loss: NaN, params: 1000, predict_ms_p95: 3 }),
    ];
    assert.equal(pickWinner(trials, acc)?.trial, 'measured');
  });

  it('ties go to fewer params, then to the earlier trial', () => {
    const o = objective('val_accuracy', 'maximize');
    const trials = [
      trial('a', { val_accuracy: 0.9, params: 500 }),
      trial('b', { val_accuracy: 0.9, params: 300 }),
      trial('c', { val_accuracy: 0.9, params: 300 }),
      trial('d', { val_accuracy: 0.8, params: 10 }),
    ];
    assert.equal(pickWinner(trials, o)?.trial, 'b');
    assert.equal(pickWinner([trials[0], trial('e', { val_accuracy: 0.9 })], o)?.trial, 'a');
  });

  it('minimizes when told to, and never picks a trial without the metric', () => {
    const o = objective('val_loss', 'minimize', 'val_accuracy >= 0.9');
    const trials = [
      trial('low-loss-low-acc', { val_loss: 0.1, val_accuracy: 0.85 }),
      trial('ok', { val_loss: 0.3, val_accuracy: 0.92 }),
      trial('better', { val_loss: 0.25, val_accuracy: 0.9 }),
      trial('no-loss', { val_accuracy: 0.99 }),
    ];
    assert.equal(pickWinner(trials, o)?.trial, 'better');
  });

  it('returns undefined when no trial meets every constraint', () => {
    assert.equal(pickWinner([trial('x', { val_accuracy: 1, val_loss: 2 })], acc), undefined);
    assert.equal(pickWinner([], acc), undefined);
  });
});

describe('rankTrials', () => {
  it('puts feasible trials first, each group by the metric, and says what each breaks', () => {
    const o = objective('val_accuracy', 'maximize', 'val_loss < 0.5', 'params <= 1000');
    const trials = [
      trial('infeasible-best', { val_accuracy: 0.99, val_loss: 0.9, params: 1000 }),
      trial('feasible-low', { val_accuracy: 0.8, val_loss: 0.4, params: 1000 }),
      trial('feasible-high', { val_accuracy: 0.9, val_loss: 0.4, params: 999 }),
      trial('both-broken', { val_accuracy: 0.95, val_loss: 0.6, params: 5000 }),
      trial('no-metric', { val_loss: 0.1, params: 10 }),
    ];
    const ranked = rankTrials(trials, o);
    assert.deepEqual(
      ranked.map((r) => [r.trial.trial, r.feasible, r.violated.map((c) => c.text)]),
      [
        ['feasible-high', true, []],
        ['feasible-low', true, []],
        ['infeasible-best', false, ['val_loss < 0.5']],
        ['both-broken', false, ['val_loss < 0.5', 'params <= 1000']],
        ['no-metric', false, []],
      ],
    );
  });
});
