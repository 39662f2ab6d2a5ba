/**
 * The error analysis of a classifier on a labelled set: the confusion matrix and the examples it
 * gets wrong with the most confidence (the ones worth looking at first: mislabelled data, a
 * systematic confusion, a class the model never learned). Pure functions over flat arrays.
 */

/** `counts[t][p]`: how many examples of true class t were predicted as class p. */
export type ConfusionMatrix = number[][];

/** Row-wise argmax of an `n × classes` row-major score matrix; ties go to the lowest class. */
export function argmaxRows(scores: ArrayLike<number>, classes: number): Int32Array {
  if (classes < 1 || scores.length % classes !== 0)
    throw new RangeError(`${scores.length} scores do not make rows of ${classes} classes`);
  const n = scores.length / classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++)
      if (scores[i * classes + c] > scores[i * classes + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** Row-wise softmax of logits, shifted by each row's maximum so large logits do not overflow. */
export function softmaxRows(logits: ArrayLike<number>, classes: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let row = 0; row < logits.length; row += classes) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[row + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      out[row + c] = Math.exp(logits[row + c] - max);
      sum += out[row + c];
    }
    for (let c = 0; c < classes; c++) out[row + c] /= sum;
  }
  return out;
}

export function confusionMatrix(
  labels: ArrayLike<number>,
  predicted: ArrayLike<number>,
  classes: number,
): ConfusionMatrix {
  if (labels.length !== predicted.length)
    throw new RangeError(`${labels.length} labels but ${predicted.length} predictions`);
  const counts = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i];
    const p = predicted[i];
    if (!(t >= 0 && t < classes && p >= 0 && p < classes))
      throw new RangeError(`example ${i}: class ${t} or ${p} is outside 0..${classes - 1}`);
    counts[t][p]++;
  }
  return counts;
}

/** Per true class: the share of its examples predicted right (NaN for a class with none). */
export function classRecall(counts: ConfusionMatrix): number[] {
  return counts.map((row, t) => row[t] / row.reduce((a, b) => a + b, 0));
}

export interface WrongExample {
  /** Position of the example in the evaluated set. */
  index: number;
  label: number;
  predicted: number;
  /** The probability the model gave its (wrong) prediction. */
  confidence: number;
  /** The probability it gave the true class. */
  trueProbability: number;
}

/**
 * The `k` misclassified examples whose wrong prediction had the highest probability, most
 * confident first; equal confidences keep the set's order, so the choice is deterministic.
 * `probabilities` is `n × classes` row-major (softmax outputs).
 */
export function mostConfidentlyWrong(
  probabilities: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
  k: number,
): WrongExample[] {
  if (probabilities.length !== labels.length * classes)
    throw new RangeError(
      `${probabilities.length} probabilities do not make ${labels.length} rows of ${classes}`,
    );
  const predicted = argmaxRows(probabilities, classes);
  const wrong: WrongExample[] = [];
  for (let i = 0; i < labels.length; i++) {
    if (predicted[i] === labels[i]) continue;
    wrong.push({
      index: i,
      label: labels[i],
      predicted: predicted[i],
      confidence: probabilities[i * classes + predicted[i]],
      trueProbability: probabilities[i * classes + labels[i]],
    });
  }
  wrong.sort((a, b) => b.confidence - a.confidence || a.index - b.index);
  return wrong.slice(0, Math.max(0, k));
}

/** One true class's errors on the evaluated set. */
export interface ClassError {
  label: number;
  examples: number;
  errors: number;
  /** errors / examples; NaN for a class with no examples. */
  error: number;
}

export function classErrors(counts: ConfusionMatrix): ClassError[] {
  return counts.map((row, label) => {
    const examples = row.reduce((a, b) => a + b, 0);
    const errors = examples - row[label];
    return { label, examples, errors, error: errors / examples };
  });
}

/** A (true, predicted) pair of classes the model confuses, and how often. */
export interface ConfusedPair {
  label: number;
  predicted: number;
  count: number;
  /** The share of the true class's examples that went to `predicted`. */
  share: number;
}

/** The `k` most frequent confusions, most first; ties in (true, predicted) order. */
export function mostConfusedPairs(counts: ConfusionMatrix, k: number): ConfusedPair[] {
  const pairs: ConfusedPair[] = [];
  counts.forEach((row, label) => {
    const examples = row.reduce((a, b) => a + b, 0);
    row.forEach((count, predicted) => {
      if (predicted !== label && count > 0)
        pairs.push({ label, predicted, count, share: count / examples });
    });
  });
  pairs.sort((a, b) => b.count - a.count || a.label - b.label || a.predicted - b.predicted);
  return pairs.slice(0, Math.max(0, k));
}
