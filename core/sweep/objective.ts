import { InvalidArgumentError } from '../errors';
import { compareMetric, isMetricName, METRIC_NAMES, type Direction } from './metrics';

export const CONSTRAINT_OPERATORS = ['<', '<=', '>', '>='] as const;
export type ConstraintOperator = (typeof CONSTRAINT_OPERATORS)[number];

/** A satisficing constraint such as `val_loss < 0.5`. */
export interface Constraint {
  metric: string;
  op: ConstraintOperator;
  value: number;
  /** The constraint as written, for reports. */
  text: string;
}

/** One optimizing metric and the satisficing constraints a winner must meet. */
export interface Objective {
  metric: string;
  direction: Direction;
  constraints: Constraint[];
}

/**
 * What the winner rule needs of a finished (or early-stopped) trial: its id and its metrics,
 * e.g. those of its best epoch plus `params` and `predict_ms_p95`. A metric that was not
 * measured is absent (or NaN).
 */
export interface TrialOutcome {
  trial: string;
  metrics: Readonly<Record<string, number | undefined>>;
}

const CONSTRAINT_RE = /^\s*([a-z][a-z0-9_]*)\s*(<=|>=|<|>)\s*(\S+)\s*$/;

/** Parses `METRIC OP NUMBER` with OP one of < <= > >=; throws InvalidArgumentError saying why not. */
export function parseConstraint(text: string): Constraint {
  const match = CONSTRAINT_RE.exec(text);
  if (!match) {
    throw new InvalidArgumentError(
      `constraint "${text}" is not METRIC OP NUMBER with OP one of ${CONSTRAINT_OPERATORS.join(' ')} (e.g. "val_loss < 0.5")`,
    );
  }
  const [, metric, op, number] = match;
  if (!isMetricName(metric)) {
    throw new InvalidArgumentError(
      `constraint "${text}": unknown metric "${metric}"; known: ${METRIC_NAMES.join(', ')}`,
    );
  }
  const value = Number(number);
  if (!Number.isFinite(value))
    throw new InvalidArgumentError(`constraint "${text}": "${number}" is not a finite number`);
  return { metric, op: op as ConstraintOperator, value, text: `${metric} ${op} ${number}` };
}

function metricOf(trial: TrialOutcome, name: string): number {
  const v = trial.metrics[name];
  return typeof v === 'number' ? v : NaN;
}

/** Whether the trial meets the constraint; a trial that lacks the metric does not. */
export function meets(trial: TrialOutcome, constraint: Constraint): boolean {
  const v = metricOf(trial, constraint.metric);
  if (Number.isNaN(v)) return false;
  switch (constraint.op) {
    case '<':
      return v < constraint.value;
    case '<=':
      return v <= constraint.value;
    case '>':
      return v > constraint.value;
    case '>=':
      return v >= constraint.value;
  }
}

export interface RankedTrial<T extends TrialOutcome> {
  trial: T;
  /** Meets every constraint and has a finite value of the optimizing metric: may win. */
  feasible: boolean;
  /** The constraints it breaks (or cannot be checked against for lack of the metric). */
  violated: Constraint[];
}

/**
 * The leaderboard: feasible trials first, each group ordered by the optimizing metric (a
 * missing or non-finite value last), ties broken by fewer `params`, then by the order of
 * `trials` (pass them in creation order, so the earlier trial wins a tie).
 */
export function rankTrials<T extends TrialOutcome>(
  trials: readonly T[],
  objective: Objective,
): RankedTrial<T>[] {
  const rows = trials.map((trial, index) => {
    const violated = objective.constraints.filter((c) => !meets(trial, c));
    const score = metricOf(trial, objective.metric);
    return { trial, violated, feasible: violated.length === 0 && Number.isFinite(score), index };
  });
  rows.sort(
    (a, b) =>
      Number(b.feasible) - Number(a.feasible) ||
      compareMetric(
        metricOf(a.trial, objective.metric),
        metricOf(b.trial, objective.metric),
        objective.direction,
      ) ||
      compareMetric(metricOf(a.trial, 'params'), metricOf(b.trial, 'params'), 'minimize') ||
      a.index - b.index,
  );
  return rows.map(({ trial, feasible, violated }) => ({ trial, feasible, violated }));
}

/**
 * The winner: the best value of the optimizing metric among the trials that meet every
 * constraint (ties: fewer params, then the earlier trial), or undefined when none does.
 */
export function pickWinner<T extends TrialOutcome>(
  trials: readonly T[],
  objective: Objective,
): T | undefined {
  const first = rankTrials(trials, objective)[0];
  return first?.feasible ? first.trial : undefined;
}
