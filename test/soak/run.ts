/**
 * `npm run soak [-- --runs N --only REGEX --json]` (not part of `npm test`): every fault scenario in
 * test/fault, run N times in a row (default 10), each round a fresh `node --test` run of the fault
 * files. Prints, per scenario, runs, passes, and the p50/p95 of its duration and of its time to
 * recover (the `recovery_ms=N` diagnostics a fault test reports); the last line with --json is one
 * JSON object. Exits 1 if any run failed.
 */
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from 'node:test';
import Table from 'cli-table3';
import { percentile, round } from '../bench/stats';
import { REPO_ROOT } from '../helpers/repo';

interface SoakOptions {
  runs: number;
  only?: string;
  json?: boolean;
}

interface Scenario {
  scenario: string;
  file: string;
  runs: number;
  passes: number;
  seconds: number[];
  recoveryMs: number[];
  failures: string[];
}

const FAULT_DIR = path.join(REPO_ROOT, 'dist', 'test', 'fault');

function faultFiles(): string[] {
  return fs
    .readdirSync(FAULT_DIR)
    .filter((f) => f.endsWith('.test.js'))
    .sort()
    .map((f) => path.join(FAULT_DIR, f));
}

/** One round: every fault test once; records each test's outcome into `scenarios`. */
async function soakRound(
  files: string[],
  only: RegExp | undefined,
  scenarios: Map<string, Scenario>,
  label: string,
): Promise<void> {
  const stream = run({
    files,
    concurrency: 1,
    timeout: 300_000,
    forceExit: true,
    ...(only ? { testNamePatterns: [only] } : {}),
  });
  const lastOfFile = new Map<string, Scenario>();
  for await (const event of stream) {
    if (event.type === 'test:pass' || event.type === 'test:fail') {
      const { name, nesting, file, details } = event.data;
      if (nesting !== 0 || !file || ('skip' in event.data && event.data.skip)) continue;
      const key = `${path.basename(file)}: ${name}`;
      const s: Scenario = scenarios.get(key) ?? {
        scenario: name,
        file: path.basename(file),
        runs: 0,
        passes: 0,
        seconds: [],
        recoveryMs: [],
        failures: [],
      };
      scenarios.set(key, s);
      lastOfFile.set(file, s);
      s.runs += 1;
      s.seconds.push(details.duration_ms / 1000);
      const passed = event.type === 'test:pass';
      if (passed) s.passes += 1;
      else s.failures.push(errorText(details.error));
      process.stderr.write(
        `soak ${label} ${passed ? 'pass' : 'FAIL'} ${(details.duration_ms / 1000).toFixed(1)} s  ${key}\n`,
      );
    } else if (event.type === 'test:diagnostic' && event.data.file) {
      const m = /^recovery_ms=(\d+(?:\.\d+)?)$/.exec(event.data.message);
      const s = lastOfFile.get(event.data.file);
      if (m && s) s.recoveryMs.push(Number(m[1]));
    }
  }
}

function errorText(err: unknown): string {
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  const e = cause ?? err;
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

function summary(s: Scenario): Record<string, unknown> {
  const p = (values: number[], q: number, digits: number): number | null => {
    const v = percentile(values, q);
    return v === null ? null : round(v, digits);
  };
  return {
    scenario: s.scenario,
    file: s.file,
    runs: s.runs,
    passes: s.passes,
    seconds_p50: p(s.seconds, 50, 1),
    seconds_p95: p(s.seconds, 95, 1),
    recovery_ms_p50: p(s.recoveryMs, 50, 0),
    recovery_ms_p95: p(s.recoveryMs, 95, 0),
    failures: s.failures,
  };
}

async function main(): Promise<void> {
  const o = new Command('soak')
    .option('--runs <n>', 'rounds of the whole fault suite', Number, 10)
    .option('--only <regex>', 'only the scenarios whose name matches')
    .option('--json', 'end with one JSON line')
    .parse(process.argv)
    .opts<SoakOptions>();
  if (!Number.isInteger(o.runs) || o.runs < 1) {
    process.stderr.write('soak: --runs must be a positive integer\n');
    process.exit(2);
  }
  const only = o.only ? new RegExp(o.only) : undefined;
  const files = faultFiles();
  const scenarios = new Map<string, Scenario>();
  const started = Date.now();
  for (let r = 1; r <= o.runs; r++) await soakRound(files, only, scenarios, `${r}/${o.runs}`);
  const rows = [...scenarios.values()].map(summary);
  const table = new Table({
    head: ['scenario', 'runs', 'passes', 's p50', 's p95', 'recover ms p50', 'p95'],
    style: { head: [], border: [] },
  });
  for (const r of rows)
    table.push([
      `${String(r.file)}: ${String(r.scenario)}`.slice(0, 90),
      String(r.runs),
      String(r.passes),
      String(r.seconds_p50),
      String(r.seconds_p95),
      String(r.recovery_ms_p50 ?? '-'),
      String(r.recovery_ms_p95 ?? '-'),
    ]);
  process.stdout.write(`${table.toString()}\n`);
  const failed = rows.some((r) => r.passes !== r.runs);
  if (o.json) {
    const seconds = round((Date.now() - started) / 1000, 1);
    process.stdout.write(
      `${JSON.stringify({ soak: 'test/fault', runs: o.runs, seconds, scenarios: rows })}\n`,
    );
  }
  process.exit(failed ? 1 : 0);
}

if (require.main === module && !process.env.NODE_TEST_CONTEXT) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
