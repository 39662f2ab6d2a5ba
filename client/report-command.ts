import { status as grpcStatus } from '@grpc/grpc-js';
import type { CoordinatorClient } from '../core/coordinator-client';
import { historyTable, trainSummary } from './summary';
import { sweepReport, sweepSummary } from './sweep-summary';

/** `caviar report NAME`: a sweep's leaderboard and verdicts when NAME is a sweep, else a trial's curve. */
export async function reportCommand(
  client: CoordinatorClient,
  name: string,
  json: boolean,
): Promise<number> {
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
