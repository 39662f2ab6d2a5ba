import { afterEach, beforeEach } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { liveClusters } from '../../client/local-cluster';
import { REPO_ROOT } from './repo';
import { liveBeds } from '../multihost/testbed';

/** Lines of each role's log printed when a test fails. */
const TAIL_LINES = 15;

/** The last `lines` lines of every log file in `dir`, each under its file name. */
export function logTails(dir: string, lines = TAIL_LINES): string {
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.log'));
  } catch {
    return '';
  }
  return files
    .sort()
    .map((f) => {
      const text = fs.readFileSync(path.join(dir, f), 'utf8').trimEnd().split('\n');
      return `--- ${path.join(dir, f)} (last ${lines} lines)\n${text.slice(-lines).join('\n')}`;
    })
    .join('\n');
}

/** The .test-output folders made at or after `since` (ms), oldest first. */
function outputDirsSince(since: number): string[] {
  const base = path.join(REPO_ROOT, '.test-output');
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return [];
  }
  return names
    .map((n) => ({ dir: path.join(base, n), at: fs.statSync(path.join(base, n)).birthtimeMs }))
    .filter((d) => d.at >= since - 1_000)
    .sort((a, b) => a.at - b.at)
    .map((d) => d.dir);
}

/**
 * In a `node --test` run, every test that ends with a cluster still up (it failed, timed out, or
 * forgot to close it) has that cluster torn down before the next test starts, and a failed test
 * gets the log tails of the clusters it started. node:test runs afterEach hooks after a timeout
 * too, while the timed-out test's own code may still wait for ever: without this its processes
 * would keep the run from ending.
 */
function installReaper(): void {
  let started = Date.now();
  beforeEach(() => {
    started = Date.now();
  });
  afterEach(async (t) => {
    // Node 20's test context has `passed` at run time; its type definitions do not list it yet.
    if ((t as unknown as { passed?: boolean }).passed === false) {
      const tails = outputDirsSince(started).map((dir) => logTails(dir));
      if (tails.length > 0)
        process.stderr.write(`\n${t.name} failed; its clusters' logs end:\n${tails.join('\n')}\n`);
    }
    await Promise.all([...liveClusters()].map((cluster) => cluster.close(1_000)));
    for (const bed of [...liveBeds()]) bed.close();
  });
}

// Only under the test runner: scripts that share the helpers (chaos, bench) run no hooks.
if (process.env.NODE_TEST_CONTEXT) installReaper();
