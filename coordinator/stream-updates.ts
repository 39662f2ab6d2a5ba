import type { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { toServiceError } from '../core/errors';

/** Updates of anything faster than this are coalesced: nobody reads a status more often. */
const MIN_INTERVAL_MS = 200;

/**
 * Streams `snapshot()` on `call` now and after each `event` on `changes` (at most one write
 * every 200 ms), until a snapshot says it is the last or the client cancels.
 */
export function streamUpdates<T>(
  call: grpc.ServerWritableStream<unknown, T>,
  changes: EventEmitter,
  event: string,
  snapshot: () => { message: T; last: boolean },
): void {
  let lastWrite = 0;
  let pending: NodeJS.Timeout | undefined;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    changes.off(event, onChange);
    if (pending) clearTimeout(pending);
    call.end();
  };
  const send = (): void => {
    pending = undefined;
    lastWrite = Date.now();
    try {
      const { message, last } = snapshot();
      call.write(message);
      if (last) finish();
    } catch (err) {
      done = true;
      changes.off(event, onChange);
      const status = toServiceError(err);
      call.destroy(Object.assign(new Error(status.details), status));
    }
  };
  const onChange = (): void => {
    if (!pending && !done)
      pending = setTimeout(send, Math.max(0, MIN_INTERVAL_MS - (Date.now() - lastWrite)));
  };
  changes.on(event, onChange);
  call.on('cancelled', finish);
  send();
}
