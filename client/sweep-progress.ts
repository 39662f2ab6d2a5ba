import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { SweepStatus__Output } from '../proto/gen/caviar/v1/SweepStatus';
import type { TrialStatus__Output } from '../proto/gen/caviar/v1/TrialStatus';

const ENDED = new Set(['completed', 'failed', 'stopped']);

function progressOf(t: TrialStatus__Output): { value: number; total: number } {
  const total = Math.max(1, (t.spec?.epochs ?? 1) * t.batches_per_epoch);
  return { value: Math.min(total, t.epoch * t.batches_per_epoch + t.batches_done), total };
}

/**
 * The live view of a sweep: on a terminal, a line for the leader and one progress bar per
 * running trial; elsewhere one line per trial as it ends.
 */
export class SweepProgress {
  private bars: MultiBar | undefined;
  private header: SingleBar | undefined;
  private readonly rows = new Map<string, SingleBar>();
  private readonly reported = new Set<string>();

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(s: SweepStatus__Output): void {
    if (this.stream.isTTY) this.draw(s);
    else this.log(s);
  }

  private draw(s: SweepStatus__Output): void {
    this.bars ??= new MultiBar(
      {
        stream: this.stream,
        hideCursor: true,
        format: '{trial} {bar} {percentage}% | epoch {epoch} | val acc {acc} | {note}',
      },
      Presets.shades_classic,
    );
    this.header ??= this.bars.create(1, 0, {}, { format: '{text}' });
    this.header.update(0, {
      text: `sweep ${s.sweep}: round ${s.round + 1}/${s.rounds}, ${s.trials.filter((t) => ENDED.has(t.status)).length}/${s.trials_planned} trials done, leader ${s.best || '-'}`,
    });
    for (const t of s.trials) {
      const { value, total } = progressOf(t);
      const last = t.history[t.history.length - 1];
      const payload = {
        trial: t.trial.padEnd(24),
        epoch: `${Math.min(t.epoch + 1, t.spec?.epochs ?? 1)}/${t.spec?.epochs ?? 1}`,
        acc: last ? last.val_accuracy.toFixed(4) : '-',
        note: t.stop_reason || (ENDED.has(t.status) ? t.status : ''),
      };
      let bar = this.rows.get(t.trial);
      if (!bar) {
        bar = this.bars.create(total, value, payload);
        this.rows.set(t.trial, bar);
      }
      bar.setTotal(total);
      bar.update(ENDED.has(t.status) ? total : value, payload);
    }
  }

  private log(s: SweepStatus__Output): void {
    for (const t of s.trials) {
      if (!ENDED.has(t.status) || this.reported.has(t.trial)) continue;
      this.reported.add(t.trial);
      const best = t.history[Math.min(t.best_epoch, t.history.length - 1)];
      this.stream.write(
        `${t.trial}: ${t.status}${t.stop_reason ? ` (${t.stop_reason})` : ''} after ${t.history.length} epoch(s)` +
          (best
            ? `, best val accuracy ${best.val_accuracy.toFixed(4)} at epoch ${best.epoch + 1}`
            : '') +
          `; leader ${s.best || '-'}\n`,
      );
    }
  }

  stop(): void {
    this.bars?.stop();
  }
}
