import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { CoordinatorClient } from '../../core/coordinator-client';
import { elementCount } from '../../core/placement';
import type { TrialStatus__Output } from '../../proto/gen/caviar/v1/TrialStatus';
import { confusionMatrixSpec, learningCurvesSpec, renderSvg, scatterSpec } from './charts';
import { stringify } from 'csv-stringify/sync';
import {
  argmaxRows,
  classErrors,
  confusionMatrix,
  mostConfidentlyWrong,
  mostConfusedPairs,
  softmaxRows,
  type ClassError,
  type ConfusedPair,
} from './error-analysis';
import { reportHtml, type ChartFile, type WinnerAnalysis, type WrongExampleView } from './html';
import { imagePng, isImageShape } from './image-png';
import { fetchReportData, objectiveMetric, type ReportData } from './report-data';
import { winnerPredictions } from './winner-predictions';

export interface WriteReportOptions {
  /** How many confidently wrong validation examples to show. Defaults to 16. */
  wrongExamples?: number;
  /** Feature values shown per wrong example of non-image data. Defaults to 12. */
  featuresShown?: number;
  /** How many of the most confused class pairs to list. Defaults to 10. */
  confusedPairs?: number;
}

/** What `caviar report --out --json` prints and DIR/report.json holds. */
export interface ReportSummary {
  report: string;
  kind: 'sweep' | 'trial';
  index: string;
  files: string[];
  trials: string[];
  winner: string | null;
  validation_count: number | null;
  confusion_matrix: number[][] | null;
  class_errors: ClassError[] | null;
  confused_pairs: ConfusedPair[] | null;
  wrong_examples: Array<Omit<WrongExampleView, 'features'>>;
  note?: string;
}

/** A file name from a hyper-parameter name: letters, digits, '-' and '_' only. */
const safeName = (s: string): string => s.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 60) || 'param';

async function writeChart(
  dir: string,
  file: string,
  title: string,
  spec: Parameters<typeof renderSvg>[0],
): Promise<ChartFile> {
  await fs.writeFile(path.join(dir, file), await renderSvg(spec));
  return { file, title };
}

async function scatterCharts(dir: string, data: ReportData, metric: string): Promise<ChartFile[]> {
  // A parameter that takes one value (every setting of a lone trial) has nothing to show.
  const keys = [...new Set(data.trials.flatMap((t) => Object.keys(t.hyper)))].filter(
    (key) => new Set(data.trials.map((t) => JSON.stringify(t.hyper[key] ?? null))).size > 1,
  );
  const used = new Set<string>();
  const out: ChartFile[] = [];
  for (const key of keys) {
    let file = `scatter-${safeName(key)}.svg`;
    for (let n = 2; used.has(file); n++) file = `scatter-${safeName(key)}-${n}.svg`;
    used.add(file);
    const spec = scatterSpec(data.trials, key, metric, data.winner);
    out.push(await writeChart(dir, file, `${key} vs ${metric}`, spec));
  }
  return out;
}

async function analyseWinner(
  client: CoordinatorClient,
  status: TrialStatus__Output,
  dir: string,
  options: WriteReportOptions,
): Promise<WinnerAnalysis> {
  const p = await winnerPredictions(client, status);
  const probabilities = softmaxRows(p.logits, p.classes);
  const predicted = argmaxRows(p.logits, p.classes);
  const confusion = confusionMatrix(p.labels, predicted, p.classes);
  const right = confusion.reduce((n, row, c) => n + row[c], 0);
  const wrong = mostConfidentlyWrong(
    probabilities,
    p.labels,
    p.classes,
    options.wrongExamples ?? 16,
  );
  const size = elementCount(p.featureShape);
  const images = p.rawFeatures !== undefined && isImageShape(p.featureShape);
  const views: WrongExampleView[] = [];
  for (const [i, e] of wrong.entries()) {
    const values = p.rawFeatures?.subarray(e.index * size, (e.index + 1) * size);
    const source = p.exampleNames?.[e.index];
    const named = source === undefined ? e : { ...e, source };
    if (images && values) {
      const image = `wrong-${String(i + 1).padStart(2, '0')}.png`;
      await fs.writeFile(path.join(dir, image), imagePng(values, p.featureShape));
      views.push({ ...named, image });
    } else {
      views.push({
        ...named,
        features: values ? [...values.subarray(0, options.featuresShown ?? 12)] : [],
      });
    }
  }
  const wrongCsv = 'wrong-examples.csv';
  const className = (c: number): string => p.classNames[c] ?? String(c);
  await fs.writeFile(
    path.join(dir, wrongCsv),
    stringify(
      views.map((e, i) => [
        i + 1,
        e.index,
        e.source ?? '',
        className(e.label),
        className(e.predicted),
        e.confidence,
        e.trueProbability,
      ]),
      {
        header: true,
        columns: ['rank', 'example', 'source', 'true', 'predicted', 'p_predicted', 'p_true'],
      },
    ),
  );
  const confusionChart = await writeChart(
    dir,
    'confusion-matrix.svg',
    'confusion matrix (validation set)',
    confusionMatrixSpec(confusion, p.classNames),
  );
  return {
    trial: status.trial,
    validationCount: p.count,
    accuracy: p.count ? right / p.count : NaN,
    classNames: p.classNames,
    confusion,
    confusionChart,
    classErrors: classErrors(confusion),
    confusedPairs: mostConfusedPairs(confusion, options.confusedPairs ?? 10),
    wrong: views,
    wrongCsv,
  };
}

/**
 * `caviar report NAME --out DIR`: DIR/index.html with the leaderboard, verdicts, learning
 * curves, hyper-parameter scatters and the winner's error analysis; the charts as SVG files,
 * the wrong examples as PNGs, and DIR/report.json with the numbers.
 */
export async function writeReport(
  client: CoordinatorClient,
  name: string,
  dir: string,
  options: WriteReportOptions = {},
): Promise<ReportSummary> {
  const data = await fetchReportData(client, name);
  await fs.mkdir(dir, { recursive: true });
  const metric = objectiveMetric(data.objective);
  const curves = data.trials.some((t) => t.history.length > 0)
    ? await writeChart(
        dir,
        'learning-curves.svg',
        'learning curves',
        learningCurvesSpec(data.trials),
      )
    : undefined;
  const scatters = await scatterCharts(dir, data, metric);
  let winner: WinnerAnalysis | undefined;
  let winnerNote = '';
  if (!data.winnerStatus) {
    winnerNote =
      data.kind === 'sweep'
        ? 'No trial meets every constraint yet: there is no winner to analyse.'
        : `The trial is ${data.status}: only a completed trial is analysed.`;
  } else {
    try {
      winner = await analyseWinner(client, data.winnerStatus, dir, options);
    } catch (err) {
      // The rest of the report stands on its own; say why this part is missing.
      winnerNote = `The winner's error analysis failed: ${(err as Error).message}`;
    }
  }
  const html = reportHtml({
    data,
    metric,
    generatedAt: new Date().toISOString(),
    curves,
    scatters,
    winner,
    winnerNote,
  });
  await fs.writeFile(path.join(dir, 'index.html'), html);
  const charts = [curves, ...scatters, winner?.confusionChart].filter(
    (c): c is ChartFile => c !== undefined,
  );
  const summary: ReportSummary = {
    report: data.name,
    kind: data.kind,
    index: path.join(dir, 'index.html'),
    files: [
      'index.html',
      ...charts.map((c) => c.file),
      ...(winner?.wrong.flatMap((w) => (w.image ? [w.image] : [])) ?? []),
      ...(winner ? [winner.wrongCsv] : []),
    ],
    trials: data.trials.map((t) => t.trial),
    winner: data.winner || null,
    validation_count: winner?.validationCount ?? null,
    confusion_matrix: winner?.confusion ?? null,
    class_errors: winner?.classErrors ?? null,
    confused_pairs: winner?.confusedPairs ?? null,
    wrong_examples: (winner?.wrong ?? []).map(({ features: _features, ...rest }) => rest),
    ...(winnerNote ? { note: winnerNote } : {}),
  };
  await fs.writeFile(path.join(dir, 'report.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}
