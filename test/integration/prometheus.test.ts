import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { TrialSpec } from '../../proto/gen/caviar/v1/TrialSpec';
import { CoordinatorClient } from '../../core/coordinator-client';
import { fileSdTargets } from '../../client/prometheus-targets';
import { sleep, startCluster, submit } from '../helpers/cluster';
import { PROMETHEUS_BIN, TestPrometheus } from '../helpers/prometheus';
import { testOutputDir } from '../helpers/repo';

// Epochs of a second or two each on tfjs's plain cpu backend: several 1 s scrapes land in every
// epoch (on wasm an epoch of this MLP had become a fifth of a second, and a run could end
// between two scrapes).
const TRIAL: TrialSpec = {
  dataset: 'mnist',
  model: 'mlp:128',
  batch: 64,
  epochs: 4,
  mode: 'async',
  seed: 3,
  optimizer: { kind: 'adam', lr: 1e-3 },
};

// test/setup.sh installs it; under CI a missing binary fails rather than skips.
const skip =
  fs.existsSync(PROMETHEUS_BIN) || process.env.CI
    ? false
    : `${PROMETHEUS_BIN} is not installed (apt-get install prometheus)`;

test(
  'a real Prometheus scraping a local cluster sees the trial validation accuracy rise',
  { skip, timeout: 180_000 },
  async (t) => {
    await using cluster = await startCluster('prometheus', { etcd: 'none', backend: 'cpu' });
    await using prometheus = new TestPrometheus(testOutputDir('prometheus-server'));
    await prometheus.start(fileSdTargets(cluster.processes));
    await prometheus.waitForTargets(cluster.processes.length);
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const startS = Date.now() / 1000;
      const trial = await submit(client, TRIAL);
      const done = await trial.done;
      assert.equal(done.status, 'completed', done.error);
      // Two more scrapes, so the last epoch's value is in.
      await sleep(2_500);
      const endS = Date.now() / 1000;

      const up = await prometheus.query('up');
      assert.equal(up.length, cluster.processes.length, 'every process is a target');
      for (const target of up) assert.equal(target.value, 1, JSON.stringify(target.metric));

      const series = await prometheus.queryRange(
        `caviar_trial_validation_accuracy{trial="${trial.id}"}`,
        startS,
        endS,
        0.5,
      );
      assert.equal(series.length, 1, 'one validation-accuracy series for the trial');
      assert.equal(series[0].metric.caviar_role, 'coordinator');
      const values = series[0].values.map(([, v]) => Number(v));
      const distinct = values.filter((v, i) => i === 0 || v !== values[i - 1]);
      t.diagnostic(`validation accuracy as scraped: ${distinct.join(', ')}`);
      assert.ok(distinct.length >= 2, `scrapes saw only ${JSON.stringify(distinct)}`);
      assert.ok(
        values[values.length - 1] > values[0],
        `validation accuracy did not rise: ${JSON.stringify(distinct)}`,
      );
      const final = done.history[done.history.length - 1].val_accuracy;
      assert.ok(
        Math.abs(values[values.length - 1] - final) < 1e-9,
        'the last value is the last epoch',
      );

      // The recording rules run against the real names too.
      const rate = await prometheus.query(
        `trial:caviar_trial_examples:rate1m{trial="${trial.id}"}`,
      );
      assert.equal(rate.length, 1, 'the examples/s recording rule has the trial');
      const pushes = await prometheus.query('sum(caviar_worker_push_seconds_count)');
      assert.ok(pushes[0]?.value > 0, 'the workers exported push latencies');
      const applied = await prometheus.query(
        // The shards drop a finished trial, so its series went stale: look back over the run.
        `sum(max_over_time(caviar_ps_pushes_applied_total{trial="${trial.id}"}[5m]))`,
      );
      assert.ok(applied[0]?.value > 0, 'the shards exported applied pushes');
    } finally {
      client.close();
    }
  },
);
