import assert from 'node:assert/strict';
import type { TrainSummary } from '../../client/summary';
import { lastJsonLine, runCaviar } from './repo';

/** `caviar train ... --json` that must complete with every batch applied once; its summary. */
export async function trainCompleted(
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<TrainSummary> {
  const result = await runCaviar(['train', ...args, '--json'], {
    timeoutMs: options.timeoutMs ?? 170_000,
    env: options.env,
  });
  assert.equal(result.code, 0, result.stderr);
  const summary = lastJsonLine<TrainSummary>(result.stdout);
  assert.equal(summary.status, 'completed');
  assert.equal(summary.batches_applied, summary.batches_scheduled, 'every batch applied once');
  return summary;
}
