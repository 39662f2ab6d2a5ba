import type { Logger } from './log';

/**
 * Node flags every role process runs with (bin/caviar.js's shebang, the local cluster's spawns,
 * the systemd units). V8 sizes the old generation from the live heap, which for a shard is
 * small, so the megabyte buffers of every pull and push (socket reads, gRPC frames) set off a
 * mark-compact every few round trips. Starting the old generation at 128 MB spares the round
 * trips those collections, which were a large share of the CPU each end spent on one (README,
 * Benchmarks).
 */
export const ROLE_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/** What a role process prints as one JSON line on stdout once it serves, for launchers to read. */
export interface ReadyLine {
  role: 'coordinator' | 'ps' | 'worker';
  id: string;
  address: string;
  pid: number;
  backend?: string;
  /** The process's Prometheus endpoint, http://HOST:PORT/metrics. */
  metrics?: string;
  /** The coordinator's web dashboard, http://HOST:PORT/. */
  dashboard?: string;
}

export function announceReady(line: Omit<ReadyLine, 'pid'>): void {
  process.stdout.write(JSON.stringify({ ...line, pid: process.pid }) + '\n');
}

/**
 * Runs `close` once on SIGTERM or SIGINT, then exits; a second signal exits at once. Unhandled
 * errors are logged and end the process with code 1, so a launcher sees the death.
 */
export function exitOnSignals(log: Logger, close: () => Promise<void>): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) process.exit(1);
    closing = true;
    log.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
}
