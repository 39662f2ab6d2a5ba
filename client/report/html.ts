import type { ClassError, ConfusedPair, ConfusionMatrix, WrongExample } from './error-analysis';
import type { ReportData, ReportTrial } from './report-data';

/** Text and attribute values alike: nothing a trial name or a hyper-parameter holds can inject markup. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A chart file of the report, relative to index.html. */
export interface ChartFile {
  file: string;
  title: string;
}

/** One confidently wrong validation example, with its picture when the data are images. */
export interface WrongExampleView extends WrongExample {
  /** Where the example came from (its file), where the data set names examples. */
  source?: string;
  /** A PNG next to index.html, for image data. */
  image?: string;
  /** The first feature values (before normalization when known), for other data. */
  features?: number[];
}

export interface WinnerAnalysis {
  trial: string;
  validationCount: number;
  accuracy: number;
  classNames: string[];
  confusion: ConfusionMatrix;
  confusionChart: ChartFile;
  classErrors: ClassError[];
  confusedPairs: ConfusedPair[];
  wrong: WrongExampleView[];
  /** The worst examples as CSV (with their sources), next to index.html. */
  wrongCsv: string;
}

export interface ReportPage {
  data: ReportData;
  metric: string;
  generatedAt: string;
  curves: ChartFile | undefined;
  scatters: ChartFile[];
  winner: WinnerAnalysis | undefined;
  /** Why the winner's error analysis is missing, when it is. */
  winnerNote: string;
}

const fmt = (x: number | undefined | null, digits = 4): string =>
  x === undefined || x === null || !Number.isFinite(x) ? '–' : x.toFixed(digits);

function hyperText(v: unknown): string {
  if (typeof v === 'number') return String(Number(v.toPrecision(4)));
  return typeof v === 'string' ? v : JSON.stringify(v ?? null);
}

function hyperKeys(trials: readonly ReportTrial[]): string[] {
  return [...new Set(trials.flatMap((t) => Object.keys(t.hyper)))];
}

function leaderboard(data: ReportData): string {
  const keys = hyperKeys(data.trials);
  const head = [
    '#',
    'trial',
    'status',
    'round',
    ...keys,
    'best epoch',
    'val acc',
    'val loss',
    'train acc',
    'train-dev acc',
    'params',
    'predict p95 ms',
    'constraints broken',
  ];
  const rows = data.trials.map((t) => {
    const win = t.trial === data.winner;
    const cells = [
      t.rank === null ? '–' : String(t.rank),
      win ? `★ ${t.trial} (winner)` : t.trial,
      t.stopReason ? `${t.status} (${t.stopReason})` : t.status,
      String(t.round),
      ...keys.map((k) => (k in t.hyper ? hyperText(t.hyper[k]) : '')),
      t.best ? String(t.best.epoch) : '–',
      fmt(t.best?.val_accuracy),
      fmt(t.best?.val_loss),
      fmt(t.best?.train_accuracy),
      fmt(t.best?.train_dev_accuracy),
      Number.isFinite(t.params) ? String(t.params) : '–',
      fmt(t.predictMsP95, 3),
      t.violations || 'none',
    ];
    return `<tr${win ? ' class="winner"' : ''}>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
  });
  return `<table class="board"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function verdicts(data: ReportData): string {
  const items = data.trials.map((t) => {
    const text = t.verdict || (t.error ? `failed: ${t.error}` : 'no verdict yet');
    return `<li><strong>${escapeHtml(t.trial)}</strong>: ${escapeHtml(text)}</li>`;
  });
  return `<ul class="verdicts">${items.join('')}</ul>`;
}

const figure = (c: ChartFile): string =>
  `<figure><img src="${escapeHtml(c.file)}" alt="${escapeHtml(c.title)}"><figcaption>${escapeHtml(c.title)}</figcaption></figure>`;

function confusionTable(w: WinnerAnalysis): string {
  const name = (c: number): string => w.classNames[c] ?? String(c);
  const head = `<tr><th>true \\ predicted</th>${w.confusion.map((_, p) => `<th>${escapeHtml(name(p))}</th>`).join('')}<th>recall</th></tr>`;
  const rows = w.confusion.map((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    const cells = row.map((n, p) => `<td${p === t ? ' class="diag"' : ''}>${n}</td>`).join('');
    return `<tr><th>${escapeHtml(name(t))}</th>${cells}<td>${total ? fmt(row[t] / total, 3) : '–'}</td></tr>`;
  });
  return `<table class="confusion">${head}${rows.join('')}</table>`;
}

function wrongExamples(w: WinnerAnalysis): string {
  if (w.wrong.length === 0) return '<p>The winner gets every validation example right.</p>';
  const name = (c: number): string => w.classNames[c] ?? String(c);
  const caption = (e: WrongExampleView): string =>
    `${e.source ? `${escapeHtml(e.source)}<br>` : ''}#${e.index}: true ${escapeHtml(name(e.label))}, predicted ${escapeHtml(name(e.predicted))} (p = ${fmt(e.confidence, 3)}; true class p = ${fmt(e.trueProbability, 3)})`;
  if (w.wrong.every((e) => e.image)) {
    const cards = w.wrong.map(
      (e) =>
        `<figure class="digit"><img src="${escapeHtml(e.image)}" alt="${escapeHtml(`validation example ${e.index}`)}"><figcaption>${caption(e)}</figcaption></figure>`,
    );
    return `<div class="digits">${cards.join('')}</div>`;
  }
  const rows = w.wrong.map(
    (e) =>
      `<tr><td>${e.index}</td><td>${escapeHtml(name(e.label))}</td><td>${escapeHtml(name(e.predicted))}</td><td>${fmt(e.confidence, 3)}</td><td>${fmt(e.trueProbability, 3)}</td><td class="features">${escapeHtml((e.features ?? []).map((v) => Number(v.toPrecision(4))).join(', '))}</td></tr>`,
  );
  return `<table class="board"><tr><th>example</th><th>true</th><th>predicted</th><th>p(predicted)</th><th>p(true)</th><th>features</th></tr>${rows.join('')}</table>`;
}

function errorTables(w: WinnerAnalysis): string {
  const name = (c: number): string => escapeHtml(w.classNames[c] ?? String(c));
  const byError = [...w.classErrors].sort((a, b) => b.error - a.error || a.label - b.label);
  const classes = byError.map(
    (e) =>
      `<tr><td>${name(e.label)}</td><td>${e.examples}</td><td>${e.errors}</td><td>${fmt(e.error, 3)}</td></tr>`,
  );
  const pairs = w.confusedPairs.map(
    (p) =>
      `<tr><td>${name(p.label)}</td><td>${name(p.predicted)}</td><td>${p.count}</td><td>${fmt(p.share, 3)}</td></tr>`,
  );
  return `<div class="row"><table class="board"><tr><th>class</th><th>examples</th><th>errors</th><th>error</th></tr>${classes.join('')}</table>
<table class="board"><tr><th>true</th><th>predicted as</th><th>examples</th><th>share of true</th></tr>${pairs.join('') || '<tr><td colspan="4">none</td></tr>'}</table></div>`;
}

function winnerSection(page: ReportPage): string {
  const w = page.winner;
  if (!w) return `<section><h2>Winner</h2><p>${escapeHtml(page.winnerNote)}</p></section>`;
  return `<section id="winner"><h2>Winner: ${escapeHtml(w.trial)}</h2>
<p>Its final parameters on the ${w.validationCount} validation examples: accuracy ${fmt(w.accuracy)}.</p>
<h3>Confusion matrix</h3>
<div class="row">${figure(w.confusionChart)}${confusionTable(w)}</div>
<h3>Error per class, and the most confused pairs</h3>
${errorTables(w)}
<h3>Most confidently wrong validation examples</h3>
<p>Also as <a href="${escapeHtml(w.wrongCsv)}">${escapeHtml(w.wrongCsv)}</a>, with each example's source.</p>
${wrongExamples(w)}
</section>`;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:nth-child(2){text-align:left}tr.winner td{background:#fff4c2;font-weight:600}
.confusion td.diag{background:#e3f1e3}.features{text-align:left;font-family:monospace}
.row{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}figure{margin:0 1em 1em 0}
.charts{display:flex;flex-wrap:wrap}.digits{display:flex;flex-wrap:wrap;gap:10px}
.digit{width:150px;font-size:12px}.digit img{width:112px;height:112px;image-rendering:pixelated;border:1px solid #999}
figcaption{font-size:12px;color:#555}.verdicts li{margin:.3em 0}`;

/** The whole report as one HTML document; charts and digits are files beside it. */
export function reportHtml(page: ReportPage): string {
  const d = page.data;
  const what = d.kind === 'sweep' ? 'sweep' : 'trial';
  const winnerLine = d.winner
    ? `winner: <strong>${escapeHtml(d.winner)}</strong>`
    : 'winner: none meets every constraint';
  const scatter = page.scatters.length
    ? `<div class="charts">${page.scatters.map(figure).join('')}</div>`
    : '<p>No hyper-parameter takes more than one value: nothing to compare.</p>';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>caviar report: ${escapeHtml(d.name)}</title>
<style>${STYLE}</style></head><body>
<h1>caviar report: ${escapeHtml(what)} ${escapeHtml(d.name)}</h1>
<p>${escapeHtml(d.status)}, ${d.trials.length} trial${d.trials.length === 1 ? '' : 's'}, ${fmt(d.seconds, 1)} s; objective: ${escapeHtml(d.objective)}; ${winnerLine}. Generated ${escapeHtml(page.generatedAt)}.</p>
<section><h2>Leaderboard</h2>${leaderboard(d)}</section>
<section><h2>Bias / variance verdicts</h2>${verdicts(d)}</section>
<section><h2>Learning curves</h2>${page.curves ? figure(page.curves) : '<p>No epoch has ended yet.</p>'}</section>
<section><h2>Hyper-parameters vs ${escapeHtml(page.metric)}</h2>${scatter}</section>
${winnerSection(page)}
</body></html>
`;
}
