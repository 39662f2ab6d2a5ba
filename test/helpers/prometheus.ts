import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { freePort } from '../../core/etcd-server';
import type { FileSdGroup } from '../../client/prometheus-targets';
import { REPO_ROOT } from './repo';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';

/** One series of a Prometheus range query: its labels and [unix seconds, value] points. */
export interface RangeSeries {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}

/**
 * A real Prometheus (Debian's package) on a free loopback port, scraping the file_sd `targets`
 * every `scrapeSeconds`, with the repository's recording rules loaded and its storage in `dir`.
 */
export class TestPrometheus {
  private child: ChildProcess | undefined;
  url = '';

  constructor(
    private readonly dir: string,
    private readonly scrapeSeconds = 1,
  ) {}

  async start(targets: FileSdGroup[]): Promise<string> {
    const targetsFile = path.join(this.dir, 'targets.json');
    fs.writeFileSync(targetsFile, JSON.stringify(targets));
    fs.copyFileSync(
      path.join(REPO_ROOT, 'deploy', 'prometheus', 'rules.yml'),
      path.join(this.dir, 'rules.yml'),
    );
    const interval = `${this.scrapeSeconds}s`;
    const config = {
      global: { scrape_interval: interval, evaluation_interval: interval },
      rule_files: ['rules.yml'],
      scrape_configs: [
        {
          job_name: 'caviar',
          file_sd_configs: [{ files: [targetsFile], refresh_interval: interval }],
        },
      ],
    };
    const configFile = path.join(this.dir, 'prometheus.yml');
    fs.writeFileSync(configFile, toYaml(config));
    const port = await freePort();
    const log = fs.openSync(path.join(this.dir, 'prometheus.log'), 'a');
    this.child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    this.url = `http://127.0.0.1:${port}`;
    await this.waitReady(30_000);
    return this.url;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child?.exitCode !== null)
        throw new Error(`prometheus exited; see ${path.join(this.dir, 'prometheus.log')}`);
      const ok = await fetch(`${this.url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`prometheus not ready within ${timeoutMs} ms`);
  }

  /**
   * Waits until `count` targets have been scraped successfully. Prometheus hands discovered
   * targets to its scrapers at most every 5 s, so a run started before this may go unseen.
   */
  async waitForTargets(count: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const data = await this.api<{ activeTargets: Array<{ health: string }> }>('targets', {});
      const up = data.activeTargets.filter((target) => target.health === 'up').length;
      if (up >= count) return;
      if (Date.now() > deadline)
        throw new Error(`only ${up} of ${count} targets up after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  private async api<T>(endpoint: string, params: Record<string, string>): Promise<T> {
    const res = await fetch(`${this.url}/api/v1/${endpoint}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${endpoint}: ${body.error}`);
    return body.data;
  }

  /** An instant query's vector: each series's labels and value. */
  async query(q: string): Promise<Array<{ metric: Record<string, string>; value: number }>> {
    const data = await this.api<{
      result: Array<{ metric: Record<string, string>; value: [number, string] }>;
    }>('query', { query: q });
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  async queryRange(q: string, startS: number, endS: number, stepS: number): Promise<RangeSeries[]> {
    const data = await this.api<{ result: RangeSeries[] }>('query_range', {
      query: q,
      start: String(startS),
      end: String(endS),
      step: String(stepS),
    });
    return data.result;
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
