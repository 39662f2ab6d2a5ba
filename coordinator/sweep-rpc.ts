import type { EventEmitter } from 'node:events';
import type { CoordinatorHandlers } from '../proto/gen/caviar/v1/Coordinator';
import type { SweepManager } from './sweep-manager';
import { streamUpdates } from './stream-updates';
import { unary, type SweepRpcName } from './rpc-handlers';

/** The event on `changes` that a sweep's watchers wait for. */
export function sweepEvent(sweep: string): string {
  return `sweep:${sweep}`;
}

/** The sweep RPCs, over the coordinator's sweeps. */
export function sweepHandlers(
  sweeps: SweepManager,
  changes: EventEmitter,
): Pick<CoordinatorHandlers, SweepRpcName> {
  return {
    SubmitSweep: unary((req) => sweeps.submit(req)),
    GetSweep: unary((ref) => sweeps.get(ref.sweep).status()),
    ListSweeps: unary(() => ({ sweeps: sweeps.list() })),
    WatchSweep: (call) => {
      const id = call.request.sweep;
      streamUpdates(call, changes, sweepEvent(id), () => {
        const status = sweeps.get(id).status();
        return { message: status, last: status.status !== 'running' };
      });
    },
  };
}
