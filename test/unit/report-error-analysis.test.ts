import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  argmaxRows,
  classRecall,
  confusionMatrix,
  mostConfidentlyWrong,
  classErrors,
  mostConfusedPairs,
  softmaxRows,
} from '../../client/report/error-analysis';

describe('confusionMatrix', () => {
  it('counts (true, predicted) pairs, rows by true class', () => {
    // true:      0 0 1 1 1 2
    // predicted: 0 1 1 1 2 0
    // row 0: [1, 1, 0]; row 1: [0, 2, 1]; row 2: [1, 0, 0].
    const counts = confusionMatrix([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 2, 0], 3);
    assert.deepEqual(counts, [
      [1, 1, 0],
      [0, 2, 1],
      [1, 0, 0],
    ]);
    assert.equal(
      counts.flat().reduce((a, b) => a + b, 0),
      6,
      'the counts sum to the examples',
    );
  });

  it('keeps rows for classes with no examples', () => {
    assert.deepEqual(confusionMatrix([1], [1], 3), [
      [0, 0, 0],
      [0, 1, 0],
      [0, 0, 0],
    ]);
  });

  it('refuses mismatched lengths and classes out of range', () => {
    assert.throws(() => confusionMatrix([0, 1], [0], 2), RangeError);
    assert.throws(() => confusionMatrix([0, 2], [0, 1], 2), RangeError);
    assert.throws(() => confusionMatrix([0], [-1], 2), RangeError);
  });

  it('gives per-class recall, NaN for an empty class', () => {
    const recall = classRecall([
      [3, 1],
      [0, 0],
    ]);
    assert.equal(recall[0], 0.75);
    assert.ok(Number.isNaN(recall[1]));
  });
});

describe('argmaxRows and softmaxRows', () => {
  it('takes the largest score per row, the lowest class on a tie', () => {
    assert.deepEqual([...argmaxRows([0.1, 0.7, 0.2, 0.5, 0.5, 0], 3)], [1, 0]);
    assert.throws(() => argmaxRows([1, 2, 3], 2), RangeError);
  });

  it('turns logits into probabilities without overflow', () => {
    // softmax([0, ln 3]) = [1/4, 3/4]; adding 1000 to both changes nothing.
    const p = softmaxRows([0, Math.log(3), 1000, 1000 + Math.log(3)], 2);
    for (const [i, want] of [0.25, 0.75, 0.25, 0.75].entries())
      assert.ok(Math.abs(p[i] - want) < 1e-12, `p[${i}] = ${p[i]}`);
  });
});

describe('mostConfidentlyWrong', () => {
  // Four examples of three classes, probabilities row by row:
  //   0: true 0, [0.9, 0.05, 0.05] -> right
  //   1: true 1, [0.6, 0.3, 0.1]   -> wrong, says 0 with 0.6
  //   2: true 2, [0.1, 0.85, 0.05] -> wrong, says 1 with 0.85
  //   3: true 0, [0.2, 0.1, 0.7]   -> wrong, says 2 with 0.7
  const probs = [0.9, 0.05, 0.05, 0.6, 0.3, 0.1, 0.1, 0.85, 0.05, 0.2, 0.1, 0.7];
  const labels = [0, 1, 2, 0];

  it('orders the misclassified by the probability of their wrong prediction', () => {
    assert.deepEqual(mostConfidentlyWrong(probs, labels, 3, 10), [
      { index: 2, label: 2, predicted: 1, confidence: 0.85, trueProbability: 0.05 },
      { index: 3, label: 0, predicted: 2, confidence: 0.7, trueProbability: 0.2 },
      { index: 1, label: 1, predicted: 0, confidence: 0.6, trueProbability: 0.3 },
    ]);
  });

  it('keeps the top k', () => {
    assert.deepEqual(
      mostConfidentlyWrong(probs, labels, 3, 2).map((e) => e.index),
      [2, 3],
    );
    assert.deepEqual(mostConfidentlyWrong(probs, labels, 3, 0), []);
  });

  it('breaks ties by position and returns nothing when all are right', () => {
    const tied = [0.2, 0.8, 0.2, 0.8, 0.8, 0.2];
    assert.deepEqual(
      mostConfidentlyWrong(tied, [0, 0, 1], 2, 5).map((e) => e.index),
      [0, 1, 2],
    );
    assert.deepEqual(mostConfidentlyWrong([0.9, 0.1], [0], 2, 5), []);
  });

  it('refuses probabilities that do not match the labels', () => {
    assert.throws(() => mostConfidentlyWrong([0.5, 0.5, 1], [0], 2, 1), RangeError);
  });
});

describe('classErrors and mostConfusedPairs', () => {
  // Rows are true classes: class 0 is always right, class 1 goes to 2 three times and to 0
  // once, class 2 to 1 once; class 3 has no examples.
  const counts = [
    [5, 0, 0, 0],
    [1, 4, 3, 0],
    [0, 1, 9, 0],
    [0, 0, 0, 0],
  ];

  it('counts each class’s examples and errors', () => {
    const errors = classErrors(counts);
    assert.deepEqual(
      errors.slice(0, 3).map((e) => [e.label, e.examples, e.errors, e.error]),
      [
        [0, 5, 0, 0],
        [1, 8, 4, 0.5],
        [2, 10, 1, 0.1],
      ],
    );
    assert.ok(Number.isNaN(errors[3].error), 'a class with no examples has no error rate');
  });

  it('lists the most frequent confusions first, with the share of the true class', () => {
    assert.deepEqual(mostConfusedPairs(counts, 2), [
      { label: 1, predicted: 2, count: 3, share: 3 / 8 },
      { label: 1, predicted: 0, count: 1, share: 1 / 8 },
    ]);
    assert.equal(mostConfusedPairs(counts, 10).length, 3);
  });
});
