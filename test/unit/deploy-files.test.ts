import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { REPO_ROOT, tempDir } from '../helpers/repo';
import { exportedSampleNames } from '../helpers/metric-catalog';
import { ROLE_NODE_FLAGS } from '../../core/role-process';

const PROMETHEUS_DIR = path.join(REPO_ROOT, 'deploy', 'prometheus');
const GRAFANA_JSON = path.join(REPO_ROOT, 'deploy', 'grafana', 'caviar.json');
const PROMTOOL = '/usr/bin/promtool';
const SYSTEMD_DIR = path.join(REPO_ROOT, 'deploy', 'systemd');

interface Panel {
  title?: string;
  type?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

interface RuleGroup {
  rules: Array<{ record?: string; alert?: string; expr: string }>;
}

/** PromQL words that are not metric names. */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
]);

/**
 * The metric names a PromQL expression reads: identifiers outside label matchers, ranges and
 * grouping clauses, that are neither functions (followed by "(") nor keywords.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    const word = m[0].replace(/\s*\($/, '');
    if (m[1] || KEYWORDS.has(word) || /^(Inf|NaN)$/i.test(word)) continue;
    names.push(word);
  }
  return names;
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

function recordingRules(): Map<string, string> {
  const doc = parseYaml(fs.readFileSync(path.join(PROMETHEUS_DIR, 'rules.yml'), 'utf8')) as {
    groups: RuleGroup[];
  };
  const rules = new Map<string, string>();
  for (const group of doc.groups)
    for (const rule of group.rules) if (rule.record) rules.set(rule.record, rule.expr);
  return rules;
}

/** A name is known when the code exports it, or it is a recording rule over known names. */
function unknownNames(expr: string, exported: Set<string>, rules: Map<string, string>): string[] {
  return metricNames(expr).flatMap((name) => {
    if (exported.has(name)) return [];
    const rule = rules.get(name);
    return rule === undefined ? [name] : unknownNames(rule, exported, rules);
  });
}

test('bin/caviar.js and every systemd unit start node with ROLE_NODE_FLAGS', () => {
  const flags = ROLE_NODE_FLAGS.join(' ');
  const shebang = fs.readFileSync(path.join(REPO_ROOT, 'bin', 'caviar.js'), 'utf8').split('\n')[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${flags}`);
  const units = fs.readdirSync(SYSTEMD_DIR).filter((f) => f.endsWith('.service'));
  assert.ok(units.length >= 3, `units: ${units.join(', ')}`);
  for (const unit of units) {
    const text = fs.readFileSync(path.join(SYSTEMD_DIR, unit), 'utf8');
    const exec = /^ExecStart=(.*)$/m.exec(text)?.[1] ?? '';
    assert.ok(exec.startsWith(`/usr/bin/node ${flags} `), `${unit}: ${exec}`);
  }
});

test('metricNames finds the metrics of a PromQL expression', () => {
  assert.deepEqual(
    metricNames(
      'histogram_quantile(0.95, sum by (le, worker) (rate(caviar_worker_push_seconds_bucket{job="x"}[5m])))',
    ),
    ['caviar_worker_push_seconds_bucket'],
  );
  assert.deepEqual(metricNames('a:b:rate1m{trial=~"$trial"} / on (trial) group_left c_total'), [
    'a:b:rate1m',
    'c_total',
  ]);
});

test('the Grafana dashboard parses and every panel query names an exported metric', async () => {
  const dashboard = JSON.parse(fs.readFileSync(GRAFANA_JSON, 'utf8')) as { panels: Panel[] };
  const exported = await exportedSampleNames();
  const rules = recordingRules();
  const panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 10, 'the dashboard has its panels');
  for (const panel of panels) {
    const exprs = (panel.targets ?? []).map((t) => t.expr ?? '');
    assert.ok(exprs.length > 0, `panel "${panel.title}" has no query`);
    for (const expr of exprs) {
      assert.ok(metricNames(expr).length > 0, `"${panel.title}": no metric in ${expr}`);
      assert.deepEqual(unknownNames(expr, exported, rules), [], `"${panel.title}": ${expr}`);
    }
  }
  const titles = panels.map((p) => p.title ?? '').join('\n');
  for (const needed of [/accuracy/i, /examples\/s/i, /push/i, /staleness/i, /shard/i])
    assert.match(titles, needed);
});

test('every recording rule and alert reads exported metrics', async () => {
  const exported = await exportedSampleNames();
  exported.add('up'); // Prometheus's own per-target series
  const rules = recordingRules();
  const doc = parseYaml(fs.readFileSync(path.join(PROMETHEUS_DIR, 'rules.yml'), 'utf8')) as {
    groups: RuleGroup[];
  };
  for (const rule of doc.groups.flatMap((g) => g.rules))
    assert.deepEqual(unknownNames(rule.expr, exported, rules), [], rule.record ?? rule.alert);
});

// test/setup.sh installs it; under CI a missing promtool fails rather than skips.
const skip =
  fs.existsSync(PROMTOOL) || process.env.CI
    ? false
    : `${PROMTOOL} is not installed (apt-get install prometheus)`;

test('promtool check rules passes', { skip }, () => {
  execFileSync(PROMTOOL, ['check', 'rules', path.join(PROMETHEUS_DIR, 'rules.yml')], {
    stdio: 'pipe',
  });
});

test('promtool check config passes on the local scrape config', { skip }, () => {
  execFileSync(PROMTOOL, ['check', 'config', path.join(PROMETHEUS_DIR, 'prometheus.yml')], {
    stdio: 'pipe',
  });
});

/**
 * Debian's Prometheus is built without Kubernetes service discovery, so its promtool rejects a
 * kubernetes_sd_configs block outright. There, the rest of the file (relabelling, rules) is
 * checked with the discovery block swapped for an empty static one.
 */
test('promtool check config passes on the Kubernetes scrape config', { skip }, (t) => {
  const file = path.join(PROMETHEUS_DIR, 'kubernetes.yml');
  const full = spawnSync(PROMTOOL, ['check', 'config', file], { encoding: 'utf8' });
  if (full.status === 0) return;
  const output = full.stdout + full.stderr;
  assert.match(output, /field kubernetes_sd_configs not found/, output);
  t.diagnostic('this promtool has no Kubernetes discovery; checking the rest of the file');
  const doc = parseYaml(fs.readFileSync(file, 'utf8')) as {
    scrape_configs: Array<Record<string, unknown>>;
    rule_files: string[];
  };
  for (const job of doc.scrape_configs) {
    assert.ok(job.kubernetes_sd_configs, `${String(job.job_name)} discovers through Kubernetes`);
    delete job.kubernetes_sd_configs;
    job.static_configs = [{ targets: [] }];
  }
  const dir = tempDir('promtool');
  fs.copyFileSync(path.join(PROMETHEUS_DIR, 'rules.yml'), path.join(dir, 'rules.yml'));
  fs.writeFileSync(path.join(dir, 'kubernetes.yml'), toYaml(doc));
  execFileSync(PROMTOOL, ['check', 'config', path.join(dir, 'kubernetes.yml')], { stdio: 'pipe' });
});

test('every systemd unit reads caviar.env, whose flags every role takes', () => {
  const units = fs.readdirSync(SYSTEMD_DIR).filter((f) => f.endsWith('.service'));
  const env = fs.readFileSync(path.join(SYSTEMD_DIR, 'caviar.env.example'), 'utf8');
  const args = /^CAVIAR_ARGS=(.*)$/m.exec(env)?.[1] ?? '';
  assert.match(env, /^CAVIAR_TLS_DIR=/m);
  for (const unit of units) {
    const text = fs.readFileSync(path.join(SYSTEMD_DIR, unit), 'utf8');
    assert.match(text, /^EnvironmentFile=-\/etc\/caviar\/caviar\.env$/m, unit);
    assert.match(text, /^ExecStart=.* \$CAVIAR_ARGS$/m, unit);
    const role = /caviar\.js (\w+)/.exec(text)?.[1] ?? '';
    const help = spawnSync(
      process.execPath,
      [path.join(REPO_ROOT, 'bin', 'caviar.js'), role, '--help'],
      {
        encoding: 'utf8',
      },
    ).stdout;
    for (const flag of args.split(' ').filter((a) => a.startsWith('--')))
      assert.ok(help.includes(flag), `${unit}: caviar ${role} has no ${flag}`);
    assert.ok(
      /\(env:\s+CAVIAR_TLS_DIR\)/.test(help),
      `${unit}: caviar ${role} does not read CAVIAR_TLS_DIR`,
    );
  }
});
