export { ParameterServerShard, type ShardOptions } from './server';
export {
  TrialShard,
  isConsistencyMode,
  type ConsistencyMode,
  type PushMeta,
  type PushOutcome,
} from './trial-shard';
export {
  adam,
  createOptimizerState,
  momentum,
  optimizerFor,
  rmsprop,
  sgd,
  type Optimizer,
  type StepContext,
} from './optimizers';
export { RefusedInputError, type RefusalReason } from './refusal';
