/**
 * The sweep engine's pure parts: spec parsing, random search, coarse-to-fine refinement, the
 * winner rule, early stopping and the bias/variance verdict. No network, no timers; the
 * coordinator drives them.
 */
export {
  parseSweepSpec,
  readSweepSpec,
  roundSizes,
  SweepSpecError,
  TRAIN_DEFAULTS,
  type DatasetSettings,
  type ParseSweepSpecOptions,
  type RefinePlan,
  type SpecProblem,
  type SweepBudget,
  type SweepSpec,
  type TrainSettings,
} from './spec';
export {
  describeDomain,
  DOMAIN_KINDS,
  SEARCHABLE_NAMES,
  type DomainKind,
  type Hyper,
  type JsonValue,
  type RangeKind,
  type SearchDomain,
  type SearchSpace,
} from './search-space';
export { applyHyper, sampleDomain, sampleTrials, type TrialSettings } from './sampling';
export { leaders, refineSpace, type RefineOptions, type ScoredTrial } from './refine';
export { METRIC_NAMES, EPOCH_METRICS, isBetter, metricDirection, type Direction } from './metrics';
export {
  meets,
  parseConstraint,
  pickWinner,
  rankTrials,
  type Constraint,
  type ConstraintOperator,
  type Objective,
  type RankedTrial,
  type TrialOutcome,
} from './objective';
export {
  createStopper,
  isRung,
  type BestEpoch,
  type EarlyStoppingConfig,
  type StopDecision,
  type Stopper,
} from './early-stopping';
export { biasVarianceVerdict, type Diagnosis, type SplitErrors, type Verdict } from './verdict';
export type { SourcePosition } from '../source-positions';
