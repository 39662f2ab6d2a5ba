/* global Chart, document, window, fetch, URLSearchParams */
// The caviar dashboard: polls the coordinator's /api/trials and /api/members and redraws the
// trials table, the learning curves, the sweep scatter and the member list. Plain browser
// JavaScript with Chart.js (served from node_modules), so the page needs no build step.
'use strict';

const POLL_MS = Number(new URLSearchParams(window.location.search).get('poll')) || 1000;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2'];
const color = (i) => COLORS[i % COLORS.length];

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

const fixed = (v, digits) => (Number.isFinite(v) ? v.toFixed(digits) : '');

function formatHyper(hyper) {
  return Object.entries(hyper)
    .map(([k, v]) => {
      if (typeof v === 'number') return `${k}=${Number(v.toPrecision(3))}`;
      return `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
    })
    .join(' ');
}

function renderTrials(trials) {
  const body = document.querySelector('#trials tbody');
  body.replaceChildren(
    ...trials.map((t) => {
      const row = el('tr');
      row.dataset.trial = t.trial;
      const cells = [
        el('td', t.trial, 'id'),
        el('td', t.status, `status-${t.status}`),
        el('td', t.sweep ? `${t.sweep} r${t.round}` : ''),
        el('td'),
        el('td', `${Math.min(t.history.length, t.epochs)}/${t.epochs}`, 'num'),
        // Epochs count from 1 on the page, as on the learning-curve axis.
        el(
          'td',
          t.best ? `${fixed(t.best.val_accuracy, 4)} (epoch ${t.best.epoch + 1})` : '',
          'num',
        ),
        el('td', t.best ? fixed(t.best.val_loss, 4) : '', 'num'),
        el('td', fixed(t.examples_per_s, 0), 'num'),
        el('td', t.verdict || t.stop_reason || t.error),
      ];
      cells[3].append(el('code', formatHyper(t.hyper)));
      row.append(...cells);
      return row;
    }),
  );
}

function renderMembers(members) {
  const body = document.querySelector('#members tbody');
  body.replaceChildren(
    ...members.map((m) => {
      const row = el('tr');
      row.append(el('td', m.role), el('td', m.id), el('td', m.address || ''));
      row.append(el('td', m.pid || '', 'num'), el('td', m.backend || ''));
      return row;
    }),
  );
  const count = (role) => members.filter((m) => m.role === role).length;
  document.querySelector('#summary').textContent =
    `${count('ps')} shards, ${count('worker')} workers`;
}

// Charts are made once and updated in place; no animation, so every poll shows the data at once.
const curves = new Chart(document.getElementById('curves'), {
  type: 'line',
  data: { datasets: [] },
  options: {
    animation: false,
    maintainAspectRatio: false,
    parsing: false,
    scales: {
      x: { type: 'linear', title: { display: true, text: 'epoch' }, ticks: { precision: 0 } },
      y: { title: { display: true, text: 'validation accuracy' } },
    },
    plugins: { legend: { position: 'bottom' } },
  },
});

const scatter = new Chart(document.getElementById('scatter'), {
  type: 'scatter',
  data: { datasets: [] },
  options: {
    animation: false,
    maintainAspectRatio: false,
    parsing: false,
    scales: {
      x: { type: 'linear', title: { display: true, text: '' } },
      y: { title: { display: true, text: 'best validation accuracy' } },
    },
    plugins: {
      legend: { position: 'bottom' },
      tooltip: {
        callbacks: {
          label: (ctx) => `${ctx.raw.trial}: ${JSON.stringify(ctx.raw.value)} → ${ctx.raw.y}`,
        },
      },
    },
  },
});

function drawCurves(trials) {
  const select = document.getElementById('curve-metric');
  const metric = select.value;
  curves.data.datasets = trials
    .filter((t) => t.history.length > 0)
    .map((t, i) => ({
      label: t.trial,
      borderColor: color(i),
      backgroundColor: color(i),
      data: t.history.map((h) => ({ x: h.epoch + 1, y: h[metric] })),
    }));
  curves.options.scales.y.title.text = select.options[select.selectedIndex].text;
  curves.options.scales.y.type = metric === 'lr' ? 'logarithmic' : 'linear';
  curves.update('none');
}

/**
 * A log axis when the values are all positive and span a decade or more: sweeps sample learning
 * rates and weight decays log-uniformly (a coarse round's lrs may span only 1.6 decades), and
 * nothing else tells the page so.
 */
function axisType(values) {
  if (values.length < 2 || values.some((v) => typeof v !== 'number' || v <= 0)) return 'linear';
  return Math.max(...values) / Math.min(...values) >= 10 ? 'logarithmic' : 'linear';
}

/** A value as the scatter's category axis labels it: lists like `hidden` as "64,32". */
const categoryOf = (v) => (Array.isArray(v) ? v.join(',') : String(v));

function drawScatter(trials) {
  const swept = trials.filter((t) => t.sweep && t.best);
  const params = [...new Set(swept.flatMap((t) => Object.keys(t.hyper)))].sort();
  const select = document.getElementById('scatter-param');
  const valuesOf = (p) => swept.map((t) => t.hyper[p]).filter((v) => v !== undefined);
  const numeric = (p) => valuesOf(p).every((v) => typeof v === 'number');
  // Until someone picks one, show a log-spread parameter (a learning rate, say) if there is one.
  const preferred =
    params.find((p) => numeric(p) && axisType(valuesOf(p)) === 'logarithmic') ?? params[0];
  const chosen = params.includes(select.value) && select.dataset.picked ? select.value : preferred;
  if (
    select.options.length !== params.length ||
    [...select.options].some((o, i) => o.value !== params[i])
  )
    select.replaceChildren(...params.map((p) => Object.assign(el('option', p), { value: p })));
  if (chosen) select.value = chosen;
  document.getElementById('scatter-note').hidden = params.length > 0;
  // Lists and strings (hidden, optimizer, mode) are categories, in their sorted order.
  const categories =
    chosen && !numeric(chosen) ? [...new Set(valuesOf(chosen).map(categoryOf))].sort() : null;
  const xOf = (v) => (categories ? categories.indexOf(categoryOf(v)) : v);
  const sweeps = [...new Set(swept.map((t) => t.sweep))];
  scatter.data.datasets = sweeps.map((sweep, i) => ({
    label: sweep,
    backgroundColor: color(i),
    pointRadius: 5,
    // Sorted by x: with parsing off, Chart.js takes the first and last points for the x range.
    data: swept
      .filter((t) => t.sweep === sweep && t.hyper[chosen] !== undefined)
      .map((t) => ({
        x: xOf(t.hyper[chosen]),
        y: t.best.val_accuracy,
        trial: t.trial,
        value: t.hyper[chosen],
      }))
      .sort((a, b) => a.x - b.x),
  }));
  const xs = scatter.data.datasets.flatMap((d) => d.data.map((p) => p.x));
  const x = scatter.options.scales.x;
  if (categories) {
    // Category i at x = i on a linear axis, labelled by its value, half a step of room each side.
    Object.assign(x, { type: 'linear', min: -0.5, max: categories.length - 0.5 });
    x.afterBuildTicks = (scale) => {
      scale.ticks = categories.map((_, i) => ({ value: i }));
    };
    x.ticks = { callback: (v) => categories[v] ?? '' };
  } else {
    x.type = axisType(xs);
    delete x.min;
    delete x.max;
    delete x.afterBuildTicks;
    x.ticks = {};
  }
  x.title.text = chosen ? `${chosen} (${categories ? 'categories' : x.type})` : '';
  scatter.update('none');
}

let last = { trials: [], members: [] };

function redraw() {
  renderTrials(last.trials);
  renderMembers(last.members);
  drawCurves(last.trials);
  drawScatter(last.trials);
}

async function poll() {
  try {
    const [trials, members] = await Promise.all(
      ['api/trials', 'api/members'].map((u) =>
        fetch(u, { cache: 'no-store' }).then((r) => r.json()),
      ),
    );
    last = { trials: trials.trials, members: members.members };
    redraw();
    document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    document.getElementById('updated').textContent = `cannot reach the coordinator: ${err}`;
  } finally {
    window.setTimeout(poll, POLL_MS);
  }
}

document.getElementById('curve-metric').addEventListener('change', redraw);
document.getElementById('scatter-param').addEventListener('change', (event) => {
  event.target.dataset.picked = 'yes';
  redraw();
});
poll();
