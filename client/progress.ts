import { SingleBar, Presets } from 'cli-progress';
import type { TrialStatus__Output } from '../proto/gen/caviar/v1/TrialStatus';

/** Shows a trial's progress: a bar on a terminal, one line per epoch elsewhere. */
export class TrialProgress {
  private bar: SingleBar | undefined;
  private epochsShown = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(status: TrialStatus__Output): void {
    const total = Math.max(1, (status.spec?.epochs ?? 1) * status.batches_per_epoch);
    const value = Math.min(total, status.epoch * status.batches_per_epoch + status.batches_done);
    const last = status.history[status.history.length - 1];
    const payload = {
      epoch: `${Math.min(status.epoch + 1, status.spec?.epochs ?? 1)}/${status.spec?.epochs ?? 1}`,
      loss: status.last_loss ? status.last_loss.toFixed(4) : '-',
      acc: last ? last.val_accuracy.toFixed(4) : '-',
    };
    if (this.stream.isTTY) {
      this.bar ??= this.startBar(total);
      this.bar.setTotal(total);
      this.bar.update(value, payload);
      return;
    }
    for (; this.epochsShown < status.history.length; this.epochsShown++) {
      const e = status.history[this.epochsShown];
      this.stream.write(
        `${status.trial} epoch ${e.epoch + 1}/${status.spec?.epochs}: train loss ${e.train_loss.toFixed(4)}, ` +
          `val loss ${e.val_loss.toFixed(4)}, val accuracy ${e.val_accuracy.toFixed(4)} (${e.seconds.toFixed(1)} s)\n`,
      );
    }
  }

  private startBar(total: number): SingleBar {
    const bar = new SingleBar(
      {
        stream: this.stream,
        format:
          'training {bar} {percentage}% | epoch {epoch} | loss {loss} | val acc {acc} | {eta_formatted} left',
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    bar.start(total, 0, { epoch: '-', loss: '-', acc: '-' });
    return bar;
  }

  stop(): void {
    this.bar?.stop();
  }
}
