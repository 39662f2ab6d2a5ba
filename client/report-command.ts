import { status as grpcStatus } from '@grpc/grpc-js';
import type { CoordinatorClient } from '../core/coordinator-client';
import { writeReport } from './report/write-report';
import { historyTable, trainSummary } from './summary';
import { sweepReport, sweepSummary } from './sweep-summary';

export interface ReportOptions {
  json?: boolean;
  /** Write an HTML report (index.html, SVG charts, PNG examples) into this folder. */
  out?: string;
}

/**
 * `caviar report NAME`: a sweep's leaderboard and verdicts when NAME is a sweep, else a trial's
 * curve; with `--out DIR`, the HTML report of either instead.
 */
export async function reportCommand(
  client: CoordinatorClient,
  name: string,
  options: ReportOptions = {},
): Promise<number> {
  const json = options.json ?? false;
  if (options.out !== undefined) {
    const summary = await writeReport(client, name, options.out);
    process.stdout.write(
      json
        ? JSON.stringify(summary) + '\n'
        : `report of ${summary.kind} ${summary.report} written to ${summary.index}\n` +
            (summary.note ? `note: ${summary.note}\n` : ''),
    );
    return 0;
  }
  const sweep = await client.getSweep(name).catch((err: { code?: number }) => {
    if (err.code === grpcStatus.NOT_FOUND) return undefined;
    throw err;
  });
  if (sweep) {
    process.stdout.write((json ? JSON.stringify(sweepSummary(sweep)) : sweepReport(sweep)) + '\n');
    return 0;
  }
  const trial = await client.getTrial(name);
  process.stdout.write(
    (json
      ? JSON.stringify({ ...trainSummary(trial), history: trial.history })
      : historyTable(trial)) + '\n',
  );
  return 0;
}
