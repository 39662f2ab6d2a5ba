import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createStopper, isRung, type StopDecision } from '../../core/sweep';

function run(
  stopper: ReturnType<typeof createStopper>,
  trialId: string,
  metrics: number[],
): StopDecision[] {
  return metrics.map((m, epoch) => stopper.report(trialId, epoch, m));
}

describe('patience', () => {
  it('stops after `patience` epochs without improvement and keeps the best epoch', () => {
    const stopper = createStopper({ kind: 'patience', metric: 'val_accuracy', patience: 2 });
    // Best at epoch 1 (0.6); epochs 2 and 3 do not beat it: stop at epoch 3.
    assert.deepEqual(run(stopper, 't', [0.5, 0.6, 0.59, 0.6]), [
      'continue',
      'continue',
      'continue',
      'stop',
    ]);
    assert.deepEqual(stopper.best('t'), { epoch: 1, metric: 0.6 });
    assert.ok(stopper.stopped('t'));
    assert.equal(stopper.report('t', 4, 0.99), 'stop', 'a stopped trial stays stopped');
    assert.deepEqual(stopper.best('t'), { epoch: 1, metric: 0.6 });
  });

  it('an improvement resets the count; losses improve downwards', () => {
    const stopper = createStopper({ kind: 'patience', metric: 'val_loss', patience: 2 });
    assert.deepEqual(run(stopper, 't', [1, 1.1, 0.9, 0.95, 0.8, 0.85, 0.81]), [
      'continue',
      'continue',
      'continue',
      'continue',
      'continue',
      'continue',
      'stop',
    ]);
    assert.deepEqual(stopper.best('t'), { epoch: 4, metric: 0.8 });
  });

  it('trials are independent; a repeated report changes nothing', () => {
    const stopper = createStopper({ kind: 'patience', metric: 'val_loss', patience: 1 });
    assert.equal(stopper.report('a', 0, 1), 'continue');
    assert.equal(stopper.report('b', 0, 5), 'continue');
    assert.equal(stopper.report('a', 1, 0.5), 'continue');
    assert.equal(stopper.report('a', 1, 9), 'continue', 'a replay of epoch 1 keeps its answer');
    assert.deepEqual(stopper.best('a'), { epoch: 1, metric: 0.5 });
    assert.equal(stopper.report('b', 1, 6), 'stop');
    assert.equal(stopper.best('c'), undefined);
  });

  it('a diverged (NaN) metric never improves', () => {
    const stopper = createStopper({ kind: 'patience', metric: 'val_loss', patience: 2 });
    assert.deepEqual(run(stopper, 't', [NaN, NaN]), ['continue', 'stop']);
    assert.equal(stopper.best('t'), undefined);
  });

  it('without a config never stops but still tracks the best epoch', () => {
    const stopper = createStopper(null);
    assert.deepEqual(run(stopper, 't', [0.1, 0.5, 0.2, 0.2, 0.2]), Array(5).fill('continue'));
    assert.deepEqual(stopper.best('t'), { epoch: 1, metric: 0.5 });
  });
});

describe('ASHA', () => {
  it('places rungs at min_epochs × reduction^k completed epochs', () => {
    const rungs = (min: number, eta: number) =>
      Array.from({ length: 30 }, (_, i) => i + 1).filter((n) => isRung(n, min, eta));
    assert.deepEqual(rungs(1, 3), [1, 3, 9, 27]);
    assert.deepEqual(rungs(2, 2), [2, 4, 8, 16]);
  });

  it('stops the bottom trials at a rung, deciding on arrival', () => {
    const stopper = createStopper({
      kind: 'asha',
      metric: 'val_loss',
      minEpochs: 1,
      reduction: 3,
    });
    // Epoch 0 completes rung 1. Each arrival continues if in the top ceil(n/3) so far.
    const arrivals: Array<[string, number, StopDecision]> = [
      ['t0', 0.5, 'continue'], // n=1, keep 1: best so far
      ['t1', 0.4, 'continue'], // n=2, keep 1: best so far
      ['t2', 0.6, 'stop'], // n=3, keep 1: third
      ['t3', 0.3, 'continue'], // n=4, keep 2: best
      ['t4', 0.45, 'stop'], // n=5, keep 2: third (0.3, 0.4 ahead)
      ['t5', 0.35, 'continue'], // n=6, keep 2: second
    ];
    for (const [id, loss, expected] of arrivals)
      assert.equal(stopper.report(id, 0, loss), expected, id);
    // Between rungs nobody is judged, however bad.
    assert.equal(stopper.report('t0', 1, 9), 'continue');
    // Rung 3 (epoch index 2): t0 arrives first and continues; t1 is worse, n=2, keep 1: stop.
    assert.equal(stopper.report('t0', 2, 0.2), 'continue');
    assert.equal(stopper.report('t1', 1, 0.3), 'continue');
    assert.equal(stopper.report('t1', 2, 0.25), 'stop');
    assert.deepEqual(stopper.best('t0'), { epoch: 2, metric: 0.2 });
    assert.ok(stopper.stopped('t2') && stopper.stopped('t4') && stopper.stopped('t1'));
    assert.ok(!stopper.stopped('t3') && !stopper.stopped('t5'));
  });

  it('a replayed rung report is not counted twice', () => {
    const stopper = createStopper({
      kind: 'asha',
      metric: 'val_accuracy',
      minEpochs: 1,
      reduction: 2,
    });
    assert.equal(stopper.report('a', 0, 0.9), 'continue');
    assert.equal(stopper.report('a', 0, 0.9), 'continue');
    // Were a counted twice, n would be 3 and keep 2, and b would continue.
    assert.equal(stopper.report('b', 0, 0.5), 'stop');
  });

  it('law: the best arrival at a rung goes on; one behind ceil(n/reduction) others stops', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 2, max: 4 }),
        (losses, reduction) => {
          const stopper = createStopper({
            kind: 'asha',
            metric: 'val_loss',
            minEpochs: 1,
            reduction,
          });
          losses.forEach((loss, i) => {
            const decision = stopper.report(`t${i}`, 0, loss);
            const arrived = losses.slice(0, i + 1);
            const ahead = arrived.filter((l) => l < loss).length;
            const keep = Math.ceil(arrived.length / reduction);
            assert.equal(decision, ahead < keep ? 'continue' : 'stop');
            if (ahead === 0) assert.equal(decision, 'continue');
          });
        },
      ),
    );
  });
});
