import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import type { TrialSpec } from '../../proto/gen/caviar/v1/TrialSpec';
import type { TrialStatus } from '../../proto/gen/caviar/v1/TrialStatus';
import { CoordinatorClient } from '../../core/coordinator-client';
import { MetricsServer } from '../../core/metrics-server';
import { dashboardRoutes } from '../../coordinator/dashboard/server';
import { startCluster, submit } from '../helpers/cluster';
import { tempDir, testOutputDir } from '../helpers/repo';

const CHROMIUM = '/usr/bin/chromium';

// Long enough that the page is looked at while the trial still trains.
const TRIAL: TrialSpec = {
  dataset: 'mnist',
  model: 'mlp:64',
  batch: 64,
  epochs: 5,
  mode: 'async',
  seed: 5,
  optimizer: { kind: 'adam', lr: 1e-3 },
};

/** Debian's chromium, headless, with nothing that reaches outside this machine. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// test/setup.sh installs it; under CI a missing browser fails rather than skips.
const skip =
  fs.existsSync(CHROMIUM) || process.env.CI
    ? false
    : `${CHROMIUM} is not installed (apt-get install chromium)`;

/** Counts the canvas's painted pixels (any with some opacity). */
function paintedPixels(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (canvas) => {
    const c = canvas as unknown as {
      width: number;
      height: number;
      getContext(kind: '2d'): {
        getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
      };
    };
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
    return painted;
  });
}

test(
  'the dashboard shows the trials table and a drawn learning curve during a run',
  { skip, timeout: 180_000 },
  async (t) => {
    await using cluster = await startCluster('dashboard', { etcd: 'none' });
    assert.match(cluster.dashboard, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const client = new CoordinatorClient(cluster.coordinator);
    // A fresh, empty profile: nothing from an earlier run or from the user's own browser.
    const context = await chromium.launchPersistentContext(tempDir('chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 1000 },
    });
    try {
      const trial = await submit(client, TRIAL);
      const firstEpoch = await trial.until((s) => s.history.length >= 1);
      assert.equal(firstEpoch.status, 'running', 'the page is opened while the trial trains');
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(`${cluster.dashboard}?poll=500`);

      const row = page.locator(`#trials tbody tr[data-trial="${trial.id}"]`);
      await row.waitFor({ timeout: 15_000 });
      const rowText = await row.innerText();
      assert.match(rowText, /running|completed/);
      assert.match(rowText, /lr=0\.001/, 'the hyper-parameters are shown');
      await page.waitForFunction(
        () => {
          const chart = (
            globalThis as unknown as {
              Chart: { getChart(id: string): { data: { datasets: Array<{ data: unknown[] }> } } };
            }
          ).Chart.getChart('curves');
          // Two epochs: a line, not just a point.
          return (chart?.data.datasets[0]?.data.length ?? 0) >= 2;
        },
        undefined,
        { timeout: 60_000 },
      );
      assert.ok((await paintedPixels(page, '#curves')) > 1_000, 'the learning curve is drawn');
      const members = await page.locator('#members tbody tr').count();
      assert.equal(members, cluster.processes.length, 'every cluster member is listed');

      const shot = path.join(testOutputDir('dashboard-screenshot'), 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok(fs.statSync(shot).size > 10_000);
      t.diagnostic(`screenshot: ${shot}`);
      assert.deepEqual(errors, [], 'no script errors on the page');
      const done = await trial.done;
      assert.equal(done.status, 'completed', done.error);
    } finally {
      await context.close();
      client.close();
    }
  },
);

/** A finished sweep trial with a log-uniform lr, a choice of batch sizes and of hidden layers. */
function sweepTrial(
  i: number,
  lr: number,
  batch: number,
  accuracy: number,
  hidden: number[] = [64],
): TrialStatus {
  return {
    trial: `trial-${i}`,
    status: 'completed',
    sweep: 'mnist-coarse',
    hyper_json: JSON.stringify({ lr, batch, hidden }),
    spec: { epochs: 2, model: 'mlp:64', dataset: 'mnist' },
    history: [
      { epoch: 0, val_accuracy: accuracy - 0.05, val_loss: 0.5 },
      { epoch: 1, val_accuracy: accuracy, val_loss: 0.4 },
    ],
  };
}

test(
  'the sweep scatter shows every trial inside the plot for every parameter: lr on a log axis, lists as categories',
  { skip, timeout: 60_000 },
  async () => {
    // As npm start's sweep leaves them: lrs over 1.6 decades, out of order; batch sizes out of
    // order; hidden as lists.
    const trials = [
      sweepTrial(1, 2.4e-3, 128, 0.81, [128]),
      sweepTrial(2, 1.5e-4, 64, 0.93, [64]),
      sweepTrial(3, 6e-3, 64, 0.7, [256]),
      sweepTrial(4, 5e-4, 128, 0.88, [64]),
      sweepTrial(5, 1e-3, 64, 0.9, [128]),
    ];
    await using server = new MetricsServer({
      routes: dashboardRoutes({ trialStatuses: () => trials, clusterMembers: () => [] }),
    });
    const base = await server.start();
    const context = await chromium.launchPersistentContext(tempDir('chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(`${base}/`);
      type Plotted = { x: string; inside: number; outside: string[]; ticks: string[] };
      const read = (): Promise<Plotted> =>
        page.evaluate(() => {
          type Point = { x: number; y: number };
          const chart = (
            globalThis as unknown as {
              Chart: {
                getChart(id: string): {
                  data: { datasets: Array<{ data: Array<{ trial: string }> }> };
                  options: { scales: { x: { type: string } } };
                  chartArea: { left: number; right: number; top: number; bottom: number };
                  getDatasetMeta(i: number): { data: Point[] };
                  scales: { x: { ticks: Array<{ label: string }> } };
                };
              };
            }
          ).Chart.getChart('scatter');
          const area = chart.chartArea;
          const outside: string[] = [];
          let inside = 0;
          chart.data.datasets.forEach((d, i) =>
            chart.getDatasetMeta(i).data.forEach((p, j) => {
              const within =
                p.x >= area.left - 0.5 &&
                p.x <= area.right + 0.5 &&
                p.y >= area.top - 0.5 &&
                p.y <= area.bottom + 0.5;
              if (within) inside++;
              else outside.push(d.data[j].trial);
            }),
          );
          const ticks = chart.scales.x.ticks.map((t) => String(t.label));
          return { x: chart.options.scales.x.type, inside, outside, ticks };
        });
      await page.locator('#trials tbody tr').nth(4).waitFor();
      // lr's values span 1.6 decades: it is shown first, on a log axis.
      assert.equal(await page.locator('#scatter-param').inputValue(), 'lr');
      const options = await page.locator('#scatter-param option').allTextContents();
      assert.deepEqual(options, ['batch', 'hidden', 'lr'], 'every searched parameter is offered');
      for (const [param, axis] of [
        ['lr', 'logarithmic'],
        ['batch', 'linear'],
        ['hidden', 'linear'],
      ] as const) {
        await page.selectOption('#scatter-param', param);
        const plotted = await read();
        assert.equal(plotted.x, axis, `${param}'s axis`);
        assert.deepEqual(plotted.outside, [], `${param}: trials drawn outside the plot`);
        assert.equal(plotted.inside, trials.length, `${param}: every trial is a point`);
        if (param === 'hidden')
          assert.deepEqual(
            plotted.ticks.filter((t) => t !== ''),
            ['128', '256', '64'],
            'lists are labelled categories',
          );
      }
      // A choice survives the next poll.
      await page.waitForTimeout(1_500);
      assert.equal(await page.locator('#scatter-param').inputValue(), 'hidden');
      assert.ok((await paintedPixels(page, '#scatter')) > 1_000);
    } finally {
      await context.close();
    }
  },
);
