import { stalenessBoundOf, type ResolvedTrialSpec } from '../core/trial-spec';
import { StalenessGate } from './staleness-gate';
import { loadSplits } from '../core/datasets';
import { checkAugmentFits } from '../core/augment-spec';
import { modelParams, type ParamInfo } from '../core/model-spec';
import { placeTensors, type Slice } from '../core/placement';
import { parseLrDecay } from '../core/lr-schedule';
import { checkTransfer, trainedParams } from '../core/transfer';
import type { TrialRunOptions } from './trial-run';

/** What every trial needs from its spec: data shapes, parameters, placement, the run's options. */
export interface TrialBasis {
  params: ParamInfo[];
  inputShape: number[];
  numClasses: number;
  /** Tensors of frozen layers: constants the coordinator keeps, on no shard. */
  frozen: ReadonlySet<string>;
  /** Where the trained tensors live. */
  slices: Slice[];
  /** ssp:N only: how far the trial's leases may run ahead of its slowest. */
  stalenessGate?: StalenessGate;
  runOptions: TrialRunOptions;
}

/** `quorum` is how many workers a sync step averages, asked at the trial's start. */
export async function trialBasis(
  spec: ResolvedTrialSpec,
  shardCount: number,
  quorum: () => number,
): Promise<TrialBasis> {
  const splits = await loadSplits(spec.dataset, { labelColumn: spec.labelColumn || undefined });
  const { featureShape, numClasses } = splits.train;
  checkAugmentFits(spec.augment, featureShape);
  const params = modelParams(spec.model, featureShape, numClasses);
  const frozen = checkTransfer(params, spec.transfer);
  const bound = stalenessBoundOf(spec.mode);
  return {
    params,
    inputShape: featureShape,
    numClasses,
    frozen,
    slices: placeTensors(trainedParams(params, frozen), shardCount),
    ...(bound === undefined ? {} : { stalenessGate: new StalenessGate(bound) }),
    runOptions: {
      spec,
      trainCount: splits.train.count,
      quorum,
      lr: parseLrDecay(spec.optimizer.lr_decay ?? '', Number(spec.optimizer.lr)),
    },
  };
}
