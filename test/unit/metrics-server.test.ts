import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gauge } from 'prom-client';
import { MetricsServer } from '../../core/metrics-server';
import { dashboardRoutes } from '../../coordinator/dashboard/server';
import { SAMPLE_TRIAL } from '../helpers/metric-catalog';

test('binds 127.0.0.1 by default and serves its own registry at /metrics', async () => {
  await using a = new MetricsServer();
  await using b = new MetricsServer();
  const base = await a.start();
  await b.start();
  assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(a.metricsUrl, `${base}/metrics`);
  new Gauge({
    name: 'caviar_only_in_a',
    help: 'registered in a only',
    registers: [a.registry],
  }).set(1);
  const res = await fetch(a.metricsUrl);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  assert.match(text, /caviar_only_in_a 1/);
  // The default process metrics come along.
  assert.match(text, /process_cpu_user_seconds_total/);
  assert.match(text, /nodejs_eventloop_lag_seconds/);
  assert.doesNotMatch(await (await fetch(b.metricsUrl)).text(), /caviar_only_in_a/);
  assert.equal((await fetch(`${base}/nothing`)).status, 404);
});

test('is not reachable on a non-loopback interface unless told', async () => {
  const os = await import('node:os');
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal);
  await using server = new MetricsServer();
  const port = new URL(await server.start()).port;
  if (!external) return; // no other interface on this machine: nothing more to show
  await assert.rejects(fetch(`http://${external.address}:${port}/metrics`));
});

test('serves the dashboard page and its JSON beside /metrics', async () => {
  await using server = new MetricsServer({
    routes: dashboardRoutes({
      trialStatuses: () => [SAMPLE_TRIAL],
      clusterMembers: () => [{ role: 'ps', id: 'ps-0', address: '127.0.0.1:1' }],
    }),
  });
  const base = await server.start();
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<table id="trials">/);
  const chart = await fetch(`${base}/vendor/chart.umd.min.js`);
  assert.equal(chart.status, 200);
  assert.ok((await chart.text()).length > 100_000);
  const { trials } = (await (await fetch(`${base}/api/trials`)).json()) as {
    trials: Array<{ trial: string; hyper: Record<string, unknown>; best: { epoch: number } }>;
  };
  assert.equal(trials[0].trial, 'trial-7');
  assert.deepEqual(trials[0].hyper.hidden, [64]);
  assert.equal(trials[0].best.epoch, 1);
  const { members } = (await (await fetch(`${base}/api/members`)).json()) as {
    members: Array<{ id: string }>;
  };
  assert.equal(members[0].id, 'ps-0');
  assert.equal((await fetch(`${base}/../package.json`)).status, 404);
});
