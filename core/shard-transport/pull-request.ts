import type { PullRequest } from '../../proto/gen/caviar/v1/PullRequest';
import { deadlineIn } from '../rpc';
import type { PullOptions } from './shard-transport';

/** A pull's request fields, less where the values go, and its deadline: the shard's wait on top of the call's. */
export function pullRequest(
  trial: string,
  options: PullOptions,
  deadlineMs: number,
): { request: PullRequest; deadline: Date } {
  const waitMs = Math.max(0, Math.round(options.waitMs ?? deadlineMs));
  const request = {
    trial,
    min_version: options.minVersion ?? 0,
    wait_ms: waitMs,
    snapshot: options.snapshotEpoch !== undefined,
    epoch: options.snapshotEpoch ?? 0,
    codec: options.codec ?? '',
  };
  return { request, deadline: options.deadline ?? deadlineIn(deadlineMs + waitMs) };
}
