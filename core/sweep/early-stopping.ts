import { isBetter, metricDirection, type Direction } from './metrics';

/**
 * - `patience`: stop a trial once `metric` has not improved for `patience` epochs in a row.
 * - `asha`: asynchronous successive halving. Rungs sit at minEpochs × reduction^k completed
 *   epochs; a trial reaching a rung continues only if it is in the top ⌈n / reduction⌉ of the
 *   n trials that have reached that rung so far (itself included). Decisions are made on
 *   arrival, never revisited: early arrivals are judged against fewer peers, as in ASHA (Li et
 *   al., 2020) and Ray Tune's ASHAScheduler.
 */
export type EarlyStoppingConfig =
  | { kind: 'patience'; metric: string; patience: number }
  | { kind: 'asha'; metric: string; minEpochs: number; reduction: number };

export type StopDecision = 'continue' | 'stop';

export interface BestEpoch {
  /** The epoch index as reported (0-based, as in EpochRecord). */
  epoch: number;
  metric: number;
}

/**
 * Early-stopping state for all trials of a sweep. Its state is a function of the sequence of
 * reports, so a coordinator taking over replays the trials' epoch records in order.
 */
export interface Stopper {
  /**
   * Records the metric measured after epoch `epoch` (0-based) and says whether the trial should
   * go on. A report for an epoch at or before one already reported changes nothing and gets
   * the earlier answer, so replays and duplicates are harmless. Once a trial is told to stop,
   * every later answer is 'stop'. A non-finite metric (a diverged loss) never counts as an
   * improvement and ranks below every finite one.
   */
  report(trialId: string, epoch: number, metric: number): StopDecision;
  /** The trial's best epoch so far; undefined before a finite metric is reported. */
  best(trialId: string): BestEpoch | undefined;
  /** Whether the trial has been told to stop. */
  stopped(trialId: string): boolean;
}

interface TrialState {
  best?: BestEpoch;
  lastEpoch: number;
  decision: StopDecision;
}

/** Whether `completed` epochs is a rung: minEpochs × reduction^k for some k >= 0. */
export function isRung(completed: number, minEpochs: number, reduction: number): boolean {
  let rung = minEpochs;
  while (rung < completed) rung *= reduction;
  return rung === completed;
}

/**
 * A stopper for the config, or for null one that never stops a trial but still tracks best
 * epochs. `direction` defaults to the metric's own (accuracies up, losses down).
 */
export function createStopper(
  config: EarlyStoppingConfig | null,
  direction: Direction = config ? metricDirection(config.metric) : 'maximize',
): Stopper {
  const trials = new Map<string, TrialState>();
  // rung (completed epochs) → trial → metric on arrival
  const rungs = new Map<number, Map<string, number>>();

  const decide = (
    trialId: string,
    epoch: number,
    metric: number,
    state: TrialState,
  ): StopDecision => {
    if (!config) return 'continue';
    if (config.kind === 'patience') {
      const sinceBest = epoch - (state.best?.epoch ?? -1);
      return sinceBest >= config.patience ? 'stop' : 'continue';
    }
    const completed = epoch + 1;
    if (!isRung(completed, config.minEpochs, config.reduction)) return 'continue';
    let rung = rungs.get(completed);
    if (!rung) rungs.set(completed, (rung = new Map()));
    rung.set(trialId, metric);
    let ahead = 0;
    for (const [other, value] of rung)
      if (other !== trialId && isBetter(value, metric, direction)) ahead += 1;
    return ahead < Math.ceil(rung.size / config.reduction) ? 'continue' : 'stop';
  };

  return {
    report(trialId, epoch, metric) {
      let state = trials.get(trialId);
      if (!state) trials.set(trialId, (state = { lastEpoch: -1, decision: 'continue' }));
      if (epoch <= state.lastEpoch || state.decision === 'stop') return state.decision;
      state.lastEpoch = epoch;
      if (
        Number.isFinite(metric) &&
        (!state.best || isBetter(metric, state.best.metric, direction))
      )
        state.best = { epoch, metric };
      state.decision = decide(trialId, epoch, metric, state);
      return state.decision;
    },
    best: (trialId) => {
      const best = trials.get(trialId)?.best;
      return best && { ...best };
    },
    stopped: (trialId) => trials.get(trialId)?.decision === 'stop',
  };
}
