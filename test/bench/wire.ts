/**
 * The wire section of `npm run bench`: one pull + push of the MLP's parameters over gRPC
 * (system-path.ts) against the same bytes over bare TCP (loopback.ts), each a child process
 * under the role processes' Node flags: the system path's share of the loopback limit.
 */
import * as path from 'node:path';
import { ROLE_NODE_FLAGS } from '../../core/role-process';
import { failure, lastJsonLine, runChild } from './children';
import { messageOf, type BenchReport, type SectionOptions } from './report';
import { medianIndex, round, spreadOf } from './stats';
import { MODEL } from './train-runs';

const SYSTEM_PATH_JS = path.join(__dirname, 'system-path.js');
const LOOPBACK_JS = path.join(__dirname, 'loopback.js');

interface WireLine {
  round_trips_per_s: number;
  cpu_ms_per_round_trip: Record<string, number>;
}

/** Runs a bench script --runs times; its JSON lines, each also emitted as `wire_<label>`. */
async function wireScript(
  script: string,
  bench: string,
  o: SectionOptions,
  report: BenchReport,
  args: string[] = [],
  label = bench,
): Promise<WireLine[]> {
  const out: WireLine[] = [];
  for (let i = 0; i < o.runs; i++) {
    report.log(`wire: ${label} (run ${i + 1}/${o.runs})`);
    const r = await runChild(process.execPath, [...ROLE_NODE_FLAGS, script, ...args], o.timeoutS);
    try {
      if (r.code !== 0) throw new Error(failure(r, bench));
      const line = lastJsonLine<WireLine & Record<string, unknown>>(
        r.stdout,
        (v) => v.bench === bench,
      );
      report.emit({ ...line, bench: `wire_${label}`, run: i + 1 });
      out.push(line);
    } catch (err) {
      const message = messageOf(err);
      report.emit({ bench: `wire_${label}`, error: message });
      report.fail(`${label}: ${message}`);
    }
  }
  return out;
}

/**
 * The system path's share of the loopback limit: caviar's gRPC round trips per second between
 * two processes (the shard applying Adam each time), as Pull + Push (sync mode) and as one
 * PushPull (async mode), over bare TCP round trips of the same bytes, each measured --runs times.
 */
export async function benchWire(o: SectionOptions, report: BenchReport): Promise<void> {
  const systemPath = (args: string[], label: string): Promise<WireLine[]> =>
    wireScript(SYSTEM_PATH_JS, 'system_path', o, report, args, label);
  const grpc = await systemPath([], 'system_path');
  const pushPull = await systemPath(['--push-pull'], 'system_path_push_pull');
  const sameHost = await systemPath(['--push-pull', '--same-host'], 'system_path_same_host');
  const tcp = await wireScript(LOOPBACK_JS, 'loopback', o, report);
  if (!grpc.length || !pushPull.length || !tcp.length) return;
  const medianRun = (lines: WireLine[]): WireLine =>
    lines[medianIndex(lines.map((l) => l.round_trips_per_s))];
  const g = spreadOf(grpc.map((l) => l.round_trips_per_s));
  const pp = spreadOf(pushPull.map((l) => l.round_trips_per_s));
  const t = spreadOf(tcp.map((l) => l.round_trips_per_s));
  const sh = sameHost.length ? spreadOf(sameHost.map((l) => l.round_trips_per_s)) : undefined;
  report.emit({
    bench: 'wire',
    model: MODEL,
    grpc_round_trips_per_s: g.median,
    grpc_spread: g.spread,
    tcp_round_trips_per_s: t.median,
    tcp_spread: t.spread,
    share_of_loopback: round(g.median / t.median, 4),
    grpc_push_pull_round_trips_per_s: pp.median,
    grpc_push_pull_spread: pp.spread,
    push_pull_share_of_loopback: round(pp.median / t.median, 4),
    grpc_cpu_ms_per_round_trip: medianRun(grpc).cpu_ms_per_round_trip,
    grpc_push_pull_cpu_ms_per_round_trip: medianRun(pushPull).cpu_ms_per_round_trip,
    tcp_cpu_ms_per_round_trip: medianRun(tcp).cpu_ms_per_round_trip,
    // PushPull with the values in shared memory: not bound by the loopback limit at all.
    ...(sh
      ? {
          same_host_round_trips_per_s: sh.median,
          same_host_spread: sh.spread,
          same_host_over_loopback: round(sh.median / t.median, 4),
          same_host_cpu_ms_per_round_trip: medianRun(sameHost).cpu_ms_per_round_trip,
        }
      : {}),
  });
}
