import type { TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };
import type { ConfusionMatrix } from './error-analysis';
import type { ReportTrial } from './report-data';

/**
 * The report's charts as Vega-Lite specs, rendered to SVG in Node by Vega itself (no browser,
 * no canvas): the spec builders are pure, renderSvg does the drawing.
 */

const WIDTH = 360;
const HEIGHT = 240;

/** Metrics of a trial's best epoch a chart can put on an axis, plus its one-off numbers. */
export function metricValue(t: ReportTrial, metric: string): number | null {
  const b = t.best;
  const error = (acc: number | undefined): number | undefined =>
    acc === undefined ? undefined : 1 - acc;
  const values: Record<string, number | undefined> = {
    val_accuracy: b?.val_accuracy,
    val_loss: b?.val_loss,
    val_error: error(b?.val_accuracy),
    train_accuracy: b?.train_accuracy,
    train_loss: b?.train_loss,
    train_error: error(b?.train_accuracy),
    train_dev_accuracy: b?.train_dev_accuracy,
    train_dev_loss: b?.train_dev_loss,
    train_dev_error: error(b?.train_dev_accuracy),
    params: t.params,
    seconds: t.seconds,
    predict_ms_p95: t.predictMsP95,
    epochs: t.history.length,
  };
  const v = values[metric];
  return v !== undefined && Number.isFinite(v) ? v : null;
}

/**
 * A log axis when every value is positive and they span a decade or more: sweeps sample learning
 * rates and weight decays log-uniformly, and the spec's distribution does not reach the report.
 */
export function isLogSpread(values: readonly number[]): boolean {
  if (values.length < 2 || values.some((v) => !(v > 0) || !Number.isFinite(v))) return false;
  return Math.max(...values) / Math.min(...values) >= 10;
}

/** Validation accuracy and loss per epoch, one line per trial, side by side. */
export function learningCurvesSpec(trials: readonly ReportTrial[]): TopLevelSpec {
  const values = trials.flatMap((t) =>
    t.history.map((h) => ({
      trial: t.trial,
      epoch: h.epoch,
      val_accuracy: Number.isFinite(h.val_accuracy) ? h.val_accuracy : null,
      val_loss: Number.isFinite(h.val_loss) ? h.val_loss : null,
    })),
  );
  const panel = (field: string, title: string) => ({
    width: WIDTH,
    height: HEIGHT,
    title,
    mark: { type: 'line' as const, point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative' as const, axis: { tickMinStep: 1, format: 'd' } },
      y: { field, type: 'quantitative' as const, scale: { zero: false }, title },
      color: { field: 'trial', type: 'nominal' as const },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    data: { values },
    hconcat: [panel('val_accuracy', 'validation accuracy'), panel('val_loss', 'validation loss')],
  };
}

/**
 * One hyper-parameter against the objective's metric, a point per trial, the winner drawn as a
 * star. Numbers get a log axis when log-spread; anything else (a layer list) is categorical.
 */
export function scatterSpec(
  trials: readonly ReportTrial[],
  param: string,
  metric: string,
  winner: string,
): TopLevelSpec {
  const raw = trials.map((t) => t.hyper[param]);
  const numeric = raw.every((v) => typeof v === 'number' && Number.isFinite(v));
  const values = trials
    .map((t) => ({
      trial: t.trial,
      x: numeric ? (t.hyper[param] as number) : JSON.stringify(t.hyper[param] ?? null),
      y: metricValue(t, metric),
      winner: t.trial === winner ? 'winner' : 'other',
    }))
    .filter((v) => v.y !== null);
  const log = numeric && isLogSpread(values.map((v) => v.x as number));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    width: WIDTH,
    height: HEIGHT,
    title: `${param} vs ${metric}${log ? ' (log axis)' : ''}`,
    data: { values },
    mark: { type: 'point', filled: true, size: 90 },
    encoding: {
      x: numeric
        ? {
            field: 'x',
            type: 'quantitative',
            title: param,
            scale: log ? { type: 'log' } : { zero: false },
          }
        : { field: 'x', type: 'nominal', title: param },
      y: { field: 'y', type: 'quantitative', title: metric, scale: { zero: false } },
      color: { field: 'trial', type: 'nominal' },
      shape: {
        field: 'winner',
        type: 'nominal',
        scale: { domain: ['winner', 'other'], range: ['diamond', 'circle'] },
        title: null,
      },
      tooltip: [{ field: 'trial' }, { field: 'x', title: param }, { field: 'y', title: metric }],
    },
  };
}

/** Counts per (true, predicted) class as a heat map with the numbers written in. */
export function confusionMatrixSpec(counts: ConfusionMatrix, classNames: string[]): TopLevelSpec {
  const name = (c: number): string => classNames[c] ?? String(c);
  const values = counts.flatMap((row, t) =>
    row.map((count, p) => ({ true: name(t), predicted: name(p), count })),
  );
  const order = counts.map((_, c) => name(c));
  const side = Math.min(520, Math.max(160, 36 * counts.length));
  const axis = (field: string, title: string) => ({
    field,
    type: 'ordinal' as const,
    sort: order,
    title,
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    width: side,
    height: side,
    title: 'confusion matrix (validation set)',
    data: { values },
    encoding: { x: axis('predicted', 'predicted class'), y: axis('true', 'true class') },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues' } },
        },
      },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: {
            condition: { test: `datum.count > ${maxCount(counts) / 2}`, value: 'white' },
            value: 'black',
          },
        },
      },
    ],
  };
}

const maxCount = (counts: ConfusionMatrix): number => Math.max(0, ...counts.flat());

/** Draws a Vega-Lite spec as a standalone SVG document, headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Both packages are ES modules only; a dynamic import loads them from this CommonJS build.
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
