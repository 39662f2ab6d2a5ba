import type { SweepRequest__Output } from '../proto/gen/caviar/v1/SweepRequest';
import type { SweepStatus } from '../proto/gen/caviar/v1/SweepStatus';
import { NotFoundError } from '../core/errors';
import type { Logger } from '../core/log';
import { parseSweepSpec } from '../core/sweep';
import { SweepRun, type SweepHost } from './sweep-run';

/** The coordinator's sweeps, by id. */
export class SweepManager {
  private readonly sweeps = new Map<string, SweepRun>();
  /** Which sweep each trial belongs to. */
  private readonly ofTrial = new Map<string, SweepRun>();

  constructor(
    private readonly host: SweepHost,
    private readonly log: Logger,
  ) {}

  /** Parses the spec (errors name file, line and field), then starts its first trials. */
  submit(request: SweepRequest__Output): SweepStatus {
    const spec = parseSweepSpec(request.spec, request.source || 'sweep spec', {
      baseDir: request.base_dir || undefined,
    });
    let id = spec.name;
    for (let n = 2; this.sweeps.has(id); n++) id = `${spec.name}-${n}`;
    const run = new SweepRun(id, spec, this.hostFor(id), this.log);
    this.sweeps.set(id, run);
    this.log.info({ sweep: id, trials: run.status().trials_planned }, 'sweep submitted');
    run.start();
    return run.status();
  }

  private hostFor(sweep: string): SweepHost {
    return {
      ...this.host,
      startTrial: async (spec, meta) => {
        const id = await this.host.startTrial(spec, meta);
        this.ofTrial.set(id, this.sweeps.get(sweep)!);
        return id;
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

  epochEnded(trial: string): void {
    this.ofTrial.get(trial)?.epochEnded(trial);
  }

  trialEnded(trial: string): void {
    this.ofTrial.get(trial)?.trialEnded(trial);
  }

  sweepOf(trial: string): SweepRun | undefined {
    return this.ofTrial.get(trial);
  }
}
