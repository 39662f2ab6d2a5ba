import { status as grpcStatus } from '@grpc/grpc-js';
import type { SweepRequest__Output } from '../proto/gen/caviar/v1/SweepRequest';
import type { SweepStatus } from '../proto/gen/caviar/v1/SweepStatus';
import { NotFoundError } from '../core/errors';
import type { Logger } from '../core/log';
import { parseSweepSpec } from '../core/sweep';
import { errorMessage } from '../core/errors';
import type { RecordStore } from './record-store';
import { SweepRun, type PersistedSweep, type SweepHost } from './sweep-run';

/** The coordinator's sweeps, by id. */
export class SweepManager {
  private readonly sweeps = new Map<string, SweepRun>();
  /** Which sweep each trial belongs to. */
  private readonly ofTrial = new Map<string, SweepRun>();

  private store: RecordStore<PersistedSweep> | undefined;

  constructor(
    private readonly host: SweepHost,
    private readonly log: Logger,
  ) {}

  /** Takes over the sweeps a previous coordinator saved (after their trials were restored). */
  async restoreAll(store: RecordStore<PersistedSweep>): Promise<void> {
    this.store = store;
    for (const saved of await store.loadAll()) {
      try {
        const spec = parseSweepSpec(saved.specText, saved.source, {
          baseDir: saved.baseDir || undefined,
        });
        const source = { text: saved.specText, source: saved.source, baseDir: saved.baseDir };
        const run = new SweepRun(saved.id, spec, source, this.hostFor(saved.id), this.log);
        this.sweeps.set(saved.id, run);
        for (const trial of saved.trials) this.ofTrial.set(trial, run);
        run.resume(saved);
        this.log.info(
          { sweep: saved.id, state: run.state, trials: saved.trials.length },
          'took over a saved sweep',
        );
      } catch (err) {
        this.log.error({ sweep: saved.id, err: errorMessage(err) }, 'cannot restore a saved sweep');
      }
    }
  }

  /** Parses the spec (errors name file, line and field), then starts its first trials. */
  submit(request: SweepRequest__Output): SweepStatus {
    const spec = parseSweepSpec(request.spec, request.source || 'sweep spec', {
      baseDir: request.base_dir || undefined,
    });
    let id = spec.name;
    for (let n = 2; this.sweeps.has(id); n++) id = `${spec.name}-${n}`;
    const source = { text: request.spec, source: request.source, baseDir: request.base_dir };
    const run = new SweepRun(id, spec, source, this.hostFor(id), this.log);
    this.sweeps.set(id, run);
    this.log.info({ sweep: id, trials: run.status().trials_planned }, 'sweep submitted');
    run.start();
    return run.status();
  }

  private hostFor(sweep: string): SweepHost {
    return {
      ...this.host,
      startTrial: async (spec, meta) => {
        const name = spec.name ?? '';
        const id = await this.host.startTrial(spec, meta).catch((err: unknown) => {
          if (this.ownStoredTrial(err, name, sweep, meta.round)) return name;
          throw err;
        });
        this.ofTrial.set(id, this.sweeps.get(sweep)!);
        return id;
      },
      changed: (id) => {
        const run = this.sweeps.get(id);
        if (run && this.store)
          void this.store.save(run.saved(), run.state !== 'running').catch(() => undefined);
        this.host.changed(id);
      },
    };
  }

  get(id: string): SweepRun {
    const run = this.sweeps.get(id);
    if (!run) throw new NotFoundError(`no sweep ${JSON.stringify(id)}`);
    return run;
  }

  list(): SweepStatus[] {
    return [...this.sweeps.values()].map((s) => s.status());
  }

  /**
   * Whether a start failed because the trial exists already as this sweep's trial of `round`: a
   * coordinator stores a trial as it accepts it, and one that died before storing its sweep's
   * record left the trial, taken over, to a successor whose sweep starts it again. The sweep then
   * takes it as started.
   */
  private ownStoredTrial(err: unknown, name: string, sweep: string, round: number): boolean {
    if ((err as { code?: unknown } | null)?.code !== grpcStatus.ALREADY_EXISTS) return false;
    const status = this.host.trialStatus(name);
    if (status.sweep !== sweep || status.round !== round) return false;
    this.log.info({ sweep, trial: name }, 'sweep took over its stored trial');
    return true;
  }

  epochEnded(trial: string, epoch: number): void {
    this.ofTrial.get(trial)?.epochEnded(trial, epoch);
  }

  trialEnded(trial: string): void {
    this.ofTrial.get(trial)?.trialEnded(trial);
  }

  sweepOf(trial: string): SweepRun | undefined {
    return this.ofTrial.get(trial);
  }
}
