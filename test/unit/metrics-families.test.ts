import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { catalogRegistry, SAMPLE_TRIAL } from '../helpers/metric-catalog';
import { registerTrialMetrics } from '../../coordinator/trial-metrics';
import { registerShardMetrics } from '../../ps/shard-metrics';
import { staleness } from '../../worker/worker-metrics';
import { fillCounter, oncePerTurn } from '../../core/metric-fill';
import { Counter } from 'prom-client';

/** The only label names a caviar family may use: ids of bounded sets and small enums. */
const ALLOWED_LABELS = new Set([
  'trial',
  'shard',
  'worker',
  'backend',
  'reason',
  'role',
  'status',
  'phase',
  'direction',
  'sweep',
  'mode',
  'optimizer',
  'le',
]);

async function caviarFamilies() {
  const all = await catalogRegistry().getMetricsAsJSON();
  return all.filter((m) => m.name.startsWith('caviar_'));
}

test('every caviar family follows the naming conventions', async () => {
  const families = await caviarFamilies();
  assert.ok(families.length >= 40, `only ${families.length} caviar families`);
  for (const m of families) {
    const type = m.type as unknown as string;
    assert.match(m.name, /^caviar_[a-z0-9_]+$/, m.name);
    if (type === 'counter') assert.match(m.name, /_total$/, `counter ${m.name} must end in _total`);
    else assert.doesNotMatch(m.name, /_total$/, `${type} ${m.name} must not end in _total`);
    // Durations are in seconds, never milliseconds.
    assert.doesNotMatch(m.name, /_(ms|millis|milliseconds)(_|$)/, m.name);
    if (/latency|duration|time/.test(m.help.toLowerCase()) && type === 'histogram')
      assert.match(m.name, /_seconds$/, `${m.name} measures time: its unit belongs in the name`);
    assert.ok(m.help.length > 10, `${m.name} needs a help text`);
  }
});

test('label names are bounded, and no label value is a blob or a path', async () => {
  for (const m of await caviarFamilies()) {
    for (const v of m.values) {
      for (const [name, value] of Object.entries(v.labels)) {
        assert.ok(ALLOWED_LABELS.has(name), `${m.name} has label ${name}`);
        assert.doesNotMatch(String(value), /[{}[\]/"]/, `${m.name}{${name}=${value}}`);
        assert.ok(String(value).length <= 64, `${m.name}{${name}} value is too long`);
      }
    }
  }
});

test('per-trial gauges read the newest epoch record, and are absent before the first', async () => {
  const registry = new Registry();
  const fresh = { ...SAMPLE_TRIAL, trial: 'trial-8', history: [] };
  registerTrialMetrics(registry, () => [SAMPLE_TRIAL, fresh]);
  const text = await registry.metrics();
  assert.match(text, /caviar_trial_validation_accuracy\{trial="trial-7"\} 0.9\n/);
  assert.doesNotMatch(text, /caviar_trial_validation_accuracy\{trial="trial-8"\}/);
  assert.match(text, /caviar_trial_epoch\{trial="trial-7"\} 2\n/);
  assert.match(text, /caviar_trial_step\{trial="trial-7"\} 104\n/);
  assert.match(text, /caviar_trial_learning_rate\{trial="trial-7"\} 0.0009\n/);
  assert.match(text, /caviar_trial_examples_per_second\{trial="trial-7"\} 3250\n/);
  assert.match(text, /caviar_trial_status\{trial="trial-7",status="running"\} 1\n/);
  assert.match(text, /caviar_trial_status\{trial="trial-7",status="completed"\} 0\n/);
  assert.match(text, /caviar_trial_batches_requeued_total\{trial="trial-7"\} 2\n/);
  assert.match(text, /caviar_trial_pushes_refused_total\{trial="trial-7",reason="duplicate"\} 3\n/);
});

test('a trial the process no longer holds loses its series', async () => {
  const registry = new Registry();
  let trials = [SAMPLE_TRIAL];
  registerTrialMetrics(registry, () => trials);
  assert.match(await registry.metrics(), /trial="trial-7"/);
  trials = [];
  assert.doesNotMatch(await registry.metrics(), /trial="trial-7"/);
});

test('shard observer feeds the apply histogram and byte counters', async () => {
  const registry = new Registry();
  const observer = registerShardMetrics(registry, 'ps-3', () => ({
    shard: 'ps-3',
    trials: [],
    unknownTrialPushes: 2,
  }));
  observer.applied('trial-1', 0.0002);
  observer.applied('trial-1', 0.002);
  observer.bytesIn(100);
  observer.bytesOut(40);
  observer.bytesOut(2);
  const text = await registry.metrics();
  assert.match(text, /caviar_ps_apply_seconds_count\{shard="ps-3",trial="trial-1"\} 2\n/);
  assert.match(text, /caviar_ps_bytes_total\{shard="ps-3",direction="in"\} 100\n/);
  assert.match(text, /caviar_ps_bytes_total\{shard="ps-3",direction="out"\} 42\n/);
  assert.match(
    text,
    /caviar_ps_pushes_refused_total\{shard="ps-3",trial="",reason="unknown_trial"\} 2/,
  );
  // Without checkpointing there is no checkpoint series at all (rather than a misleading 0).
  assert.doesNotMatch(text, /caviar_ps_checkpoint_duration_seconds\{/);
});

test('staleness counts the updates made by others between pull and push', () => {
  // async: pulled version 10, the push made the shard go to 14: 3 updates came from others.
  assert.equal(staleness(10, [{ accepted: true, version: 14 }]), 3);
  // The worst shard counts; refused or duplicate replies say nothing.
  assert.equal(
    staleness(10, [
      { accepted: true, version: 11 },
      { accepted: true, version: 16 },
      { accepted: false, duplicate: true, version: 40 },
    ]),
    5,
  );
  // sync: a step's push leaves the version at the step (or one past, when it completes it).
  assert.equal(staleness(7, [{ accepted: true, version: 7 }]), 0);
  assert.equal(staleness(7, [{ accepted: true, version: 8 }]), 0);
  assert.equal(staleness(7, []), 0);
});

test('fillCounter copies totals in, and oncePerTurn reads once per scrape', async () => {
  const registry = new Registry();
  let reads = 0;
  const read = oncePerTurn(() => {
    reads += 1;
    return 5;
  });
  for (const name of ['caviar_a_total', 'caviar_b_total'])
    new Counter({
      name,
      help: 'a test counter',
      registers: [registry],
      collect() {
        fillCounter(this, [{ labels: {}, value: read() }]);
      },
    });
  const text = await registry.metrics();
  assert.match(text, /caviar_a_total 5\n/);
  assert.match(text, /caviar_b_total 5\n/);
  assert.equal(reads, 1);
  await new Promise((r) => setImmediate(r));
  await registry.metrics();
  assert.equal(reads, 2);
});
