import * as grpc from '@grpc/grpc-js';
import type { PushHeader } from '../proto/gen/caviar/v1/PushHeader';
import type { PushReply__Output } from '../proto/gen/caviar/v1/PushReply';
import type { SessionReply__Output } from '../proto/gen/caviar/v1/SessionReply';
import { callError } from './grpc-calls';
import { refusalMetadata } from './call-status';

export type SessionCall = grpc.ClientDuplexStream<PushHeader, SessionReply__Output>;

interface Waiting {
  resolve(reply: PushReply__Output): void;
  reject(err: grpc.ServiceError): void;
  timer: NodeJS.Timeout;
  unsubscribe(): void;
}

/** One open stream and the requests on it still waiting for their answers, oldest first. */
interface Open {
  call: SessionCall;
  waiting: Waiting[];
}

/**
 * A worker's same-host push-pulls to one shard as messages on one long-lived SegmentSession
 * stream instead of a unary call each: grpc-js spends far more CPU on each side setting up and
 * tearing down a call than on a message of an open stream (figures in the README). The shard
 * answers in order, so the oldest waiting request takes each answer.
 *
 * A request has a deadline and takes an AbortSignal like a call, but a stream cannot drop one
 * message: a deadline, an abort, or a broken stream ends the whole stream, and every request on
 * it fails with that status (its outcome unknown, as for a call); the next request opens a new
 * stream. A shard without SegmentSession (UNIMPLEMENTED) makes `supported` false for good.
 */
export class PushSession {
  private open: Open | undefined;
  private unsupported = false;

  constructor(
    private readonly start: () => SessionCall,
    private readonly deadlineMs: number,
  ) {}

  get supported(): boolean {
    return !this.unsupported;
  }

  request(header: PushHeader, signal?: AbortSignal): Promise<PushReply__Output> {
    if (signal?.aborted) {
      return Promise.reject(callError(grpc.status.CANCELLED, 'cancelled before it was sent'));
    }
    const open = (this.open ??= this.openStream());
    return new Promise<PushReply__Output>((resolve, reject) => {
      const onAbort = (): void =>
        this.end(open, callError(grpc.status.CANCELLED, 'cancelled by the caller'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () =>
          this.end(
            open,
            callError(grpc.status.DEADLINE_EXCEEDED, `no answer within ${this.deadlineMs} ms`),
          ),
        this.deadlineMs,
      );
      const unsubscribe = (): void => signal?.removeEventListener('abort', onAbort);
      open.waiting.push({ resolve, reject, timer, unsubscribe });
      open.call.write(header);
    });
  }

  close(): void {
    if (this.open) this.end(this.open, callError(grpc.status.CANCELLED, 'the client closed'));
  }

  private openStream(): Open {
    const open: Open = { call: this.start(), waiting: [] };
    open.call.on('data', (answer: SessionReply__Output) => {
      const waiting = open.waiting.shift();
      if (!waiting) {
        this.end(open, callError(grpc.status.INTERNAL, 'the shard answered a request never sent'));
        return;
      }
      clearTimeout(waiting.timer);
      waiting.unsubscribe();
      if (answer.reply) waiting.resolve(answer.reply);
      else {
        const code = (answer.refused?.code || grpc.status.UNKNOWN) as grpc.status;
        // The refusal's reason, as a call's status metadata carries it, so callers read both alike.
        const metadata = refusalMetadata(answer.refused?.refusal);
        waiting.reject(callError(code, answer.refused?.details ?? 'refused', metadata));
      }
    });
    open.call.on('error', (err: grpc.ServiceError) => {
      if (err.code === grpc.status.UNIMPLEMENTED) this.unsupported = true;
      this.end(open, err);
    });
    open.call.on('end', () =>
      this.end(open, callError(grpc.status.UNAVAILABLE, 'the shard ended the session')),
    );
    return open;
  }

  /** Ends `open`'s stream; each request still waiting on it fails with `err`. */
  private end(open: Open, err: grpc.ServiceError): void {
    if (this.open === open) this.open = undefined;
    // Taken first: cancelling may report the stream's CANCELLED status before it returns.
    const failed = open.waiting.splice(0);
    open.call.cancel();
    for (const waiting of failed) {
      clearTimeout(waiting.timer);
      waiting.unsubscribe();
      waiting.reject(err);
    }
  }
}
