import type { TrialSpec } from '../proto/gen/caviar/v1/TrialSpec';
import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import type { SweepStatus } from '../proto/gen/caviar/v1/SweepStatus';
import { errorMessage } from '../core/errors';
import type { Logger } from '../core/log';
import {
  applyHyper,
  createStopper,
  pickWinner,
  rankTrials,
  refineSpace,
  roundSizes,
  sampleTrials,
  type Hyper,
  type SearchSpace,
  type Stopper,
  type SweepSpec,
} from '../core/sweep';
import { epochMetrics, trialOutcome } from './trial-outcome';

/** What a sweep needs of the coordinator it runs on. */
export interface SweepHost {
  /** Creates and starts a trial; resolves to its id. */
  startTrial(
    spec: TrialSpec,
    meta: { sweep: string; round: number; hyper: Hyper },
  ): Promise<string>;
  /** Stops a running trial, freeing its shard memory, and records why. */
  stopTrial(id: string, reason: string): Promise<void>;
  trialStatus(id: string): TrialStatus;
  changed(sweep: string): void;
}

const TERMINAL = new Set(['completed', 'failed', 'stopped']);

/** A sweep as kept in etcd: its spec as written, and where the search stands. */
export interface PersistedSweep {
  id: string;
  specText: string;
  source: string;
  baseDir: string;
  state: SweepRun['state'];
  error: string;
  round: number;
  space: SearchSpace;
  pending: Hyper[];
  trials: string[];
  startedAt: number;
  finishedAt?: number;
}

/** Where the spec came from, so a coordinator that takes the sweep over parses it the same way. */
export interface SweepSource {
  text: string;
  source: string;
  baseDir: string;
}

/**
 * One sweep, caviar style: random search over the spec's space, `parallel` trials at a time on
 * the shared cluster, early stopping as they report epochs, then `refine` rounds that narrow the
 * space around the leaders. The winner is the best by the objective among trials that meet every
 * constraint.
 */
export class SweepRun {
  state: 'running' | 'completed' | 'failed' = 'running';
  error = '';
  readonly trials: string[] = [];
  private readonly sizes: number[];
  private round = 0;
  private space: SearchSpace;
  private pending: Hyper[];
  private launched = 0;
  private readonly running = new Set<string>();
  private readonly stopper: Stopper;
  private startedAt = Date.now();
  private finishedAt: number | undefined;

  constructor(
    readonly id: string,
    readonly spec: SweepSpec,
    private readonly source: SweepSource,
    private readonly host: SweepHost,
    private readonly log: Logger,
  ) {
    this.sizes = roundSizes(spec);
    this.space = spec.search;
    this.pending = sampleTrials(this.space, this.sizes[0], spec.budget.seed, 0);
    this.stopper = createStopper(spec.earlyStopping, undefined);
  }

  start(): void {
    this.fill();
  }

  saved(): PersistedSweep {
    return {
      id: this.id,
      specText: this.source.text,
      source: this.source.source,
      baseDir: this.source.baseDir,
      state: this.state,
      error: this.error,
      round: this.round,
      space: this.space,
      pending: this.pending,
      trials: this.trials,
      startedAt: this.startedAt,
      finishedAt: this.finishedAt,
    };
  }

  /**
   * Takes over a sweep another coordinator ran (its trials were restored first): the trials that
   * have not ended are running, early stopping replays their epochs, and the search goes on from
   * the first trial of the round that was never started.
   */
  resume(saved: PersistedSweep): void {
    Object.assign(this, {
      state: saved.state,
      error: saved.error,
      round: saved.round,
      space: saved.space,
    });
    this.pending = saved.pending;
    this.startedAt = saved.startedAt;
    this.finishedAt = saved.finishedAt;
    this.trials.push(...saved.trials);
    const prefix = `${this.id}-r${this.round}-t`;
    this.launched = saved.trials.filter((id) => id.startsWith(prefix)).length;
    for (const id of saved.trials) {
      const status = this.replayEpochs(id);
      if (!TERMINAL.has(status.status ?? '')) this.running.add(id);
    }
    if (this.state !== 'running') return;
    if (this.running.size === 0 && this.launched >= this.pending.length) this.nextRound();
    else this.fill();
  }

  /** The trial's status, after early stopping has seen its evaluated epochs. */
  private replayEpochs(id: string): TrialStatus {
    const status = this.host.trialStatus(id);
    const metric = this.spec.earlyStopping?.metric;
    for (const e of status.history ?? []) {
      if (metric) this.stopper.report(id, e.epoch ?? 0, epochMetrics(e)[metric] ?? NaN);
    }
    return status;
  }

  private fill(): void {
    while (
      this.state === 'running' &&
      this.running.size < this.spec.budget.parallel &&
      this.launched < this.pending.length
    ) {
      const index = this.launched++;
      const name = `${this.id}-r${this.round}-t${index}`;
      this.running.add(name);
      this.launch(name, this.pending[index]);
    }
  }

  private launch(name: string, hyper: Hyper): void {
    const round = this.round;
    Promise.resolve()
      .then(() =>
        this.host.startTrial(applyHyper(this.spec, hyper, name).trialSpec, {
          sweep: this.id,
          round,
          hyper,
        }),
      )
      .then((id) => {
        this.trials.push(id);
        this.host.changed(this.id);
        // A trial taken over rather than started (see SweepManager) may have epochs, or ended.
        if (TERMINAL.has(this.replayEpochs(id).status ?? '')) this.trialEnded(id);
      })
      .catch((err: unknown) => {
        this.log.warn(
          { sweep: this.id, trial: name, err: errorMessage(err) },
          'sweep trial could not start',
        );
        this.error = `trial ${name} could not start: ${errorMessage(err)}`;
        this.trialEnded(name);
      });
  }

  /**
   * A trial of this sweep has `epoch` evaluated (evaluations overlap training, so not always its
   * newest): early stopping decides whether it goes on.
   */
  epochEnded(id: string, epoch: number): void {
    const status = this.host.trialStatus(id);
    const record = (status.history ?? []).find((h) => h.epoch === epoch);
    if (!record || !this.spec.earlyStopping) return;
    const value = epochMetrics(record)[this.spec.earlyStopping.metric];
    const decision = this.stopper.report(id, epoch, value ?? NaN);
    const epochs = status.spec?.epochs ?? 0;
    // Stopping after the last epoch would only turn a finished trial into a stopped one.
    if (decision === 'stop' && epoch + 1 < epochs) {
      const reason =
        this.spec.earlyStopping.kind === 'asha'
          ? 'successive halving (asha)'
          : 'early stopping (patience)';
      this.host
        .stopTrial(id, reason)
        .catch((err: unknown) =>
          this.log.warn({ trial: id, err: errorMessage(err) }, 'cannot stop'),
        );
    }
  }

  /** A trial of this sweep ended (completed, stopped, failed): start the next, or the next round. */
  trialEnded(id: string): void {
    if (!this.running.delete(id)) return;
    if (this.launched < this.pending.length) {
      this.fill();
    } else if (this.running.size === 0) {
      this.nextRound();
    }
    this.host.changed(this.id);
  }

  private nextRound(): void {
    if (this.round + 1 >= this.sizes.length) {
      this.finish();
      return;
    }
    const { objective, refine, budget } = this.spec;
    const ranked = rankTrials(this.outcomes(), objective);
    const results = ranked.map(({ trial, feasible }) => ({
      hyper: this.hyperOf(trial.trial),
      score: feasible ? (trial.metrics[objective.metric] ?? NaN) : NaN,
    }));
    this.round += 1;
    this.space = refineSpace(this.space, results, refine.top, objective.direction);
    this.pending = sampleTrials(this.space, this.sizes[this.round], budget.seed, this.round);
    this.launched = 0;
    this.log.info(
      { sweep: this.id, round: this.round, space: this.space },
      'refined the search space',
    );
    this.fill();
  }

  private finish(): void {
    this.state = this.outcomes().length > 0 ? 'completed' : 'failed';
    if (this.state === 'failed' && !this.error) this.error = 'no trial ran';
    this.finishedAt = Date.now();
    this.log.info({ sweep: this.id, best: this.best() }, 'sweep ended');
  }

  private hyperOf(id: string): Hyper {
    const json = this.host.trialStatus(id).hyper_json;
    return json ? (JSON.parse(json) as Hyper) : {};
  }

  private outcomes(): Array<ReturnType<typeof trialOutcome>> {
    return this.trials
      .map((id) => this.host.trialStatus(id))
      .filter((s) => TERMINAL.has(s.status ?? '') && (s.history?.length ?? 0) > 0)
      .map((s) => trialOutcome(s, this.spec.objective));
  }

  best(): string {
    return pickWinner(this.outcomes(), this.spec.objective)?.trial ?? '';
  }

  status(): SweepStatus {
    const { objective } = this.spec;
    const ranked = rankTrials(this.outcomes(), objective);
    const constraints = objective.constraints.map((c) => c.text).join(', ');
    return {
      sweep: this.id,
      status: this.state,
      seconds: ((this.finishedAt ?? Date.now()) - this.startedAt) / 1000,
      round: this.round,
      rounds: this.sizes.length,
      trials_planned: this.sizes.reduce((a, b) => a + b, 0),
      trials: this.trials.map((id) => this.host.trialStatus(id)),
      best: this.best(),
      objective: `${objective.direction} ${objective.metric}${constraints ? ` subject to ${constraints}` : ''}`,
      error: this.error,
      leaderboard: ranked.map((r) => r.trial.trial),
      violations: ranked.map((r) => r.violated.map((c) => c.text).join(', ')),
    };
  }
}
