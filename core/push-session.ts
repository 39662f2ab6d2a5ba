import * as grpc from '@grpc/grpc-js';
import type { PushReply__Output } from '../proto/gen/caviar/v1/PushReply';
import type { CallStatus__Output } from '../proto/gen/caviar/v1/CallStatus';
import { callError, drained } from './grpc-calls';
import { refusalMetadata } from './call-status';

/** The client's side of a session stream: requests out, answers in. */
export type SessionCall<Out, In> = grpc.ClientDuplexStream<Out, In>;

/**
 * Reads one message of a request's answer: the push's reply once the answer is whole, its
 * refusal, or undefined while more of it is to come. Throwing means the message breaks the
 * protocol (a chunk out of place): the whole stream ends with that error.
 */
export type AnswerReader<In> = (
  msg: In,
) => { reply: PushReply__Output } | { refused: grpc.ServiceError } | undefined;

interface Waiting<In> {
  read: AnswerReader<In>;
  resolve(reply: PushReply__Output): void;
  reject(err: grpc.ServiceError): void;
  timer: NodeJS.Timeout;
  unsubscribe(): void;
}

/** One open stream, the requests on it still waiting for their answers (oldest first), and its writes. */
interface Open<Out, In> {
  call: SessionCall<Out, In>;
  waiting: Waiting<In>[];
  /** Requests' messages still to go out, one request after another, never interleaved. */
  outbox: Iterator<Out>[];
  sending: boolean;
  ended: boolean;
}

/** A refusal carried in an answer, as a ServiceError whose metadata names the reason like a call's. */
export function refusalError(refused: CallStatus__Output | null | undefined): grpc.ServiceError {
  const code = (refused?.code || grpc.status.UNKNOWN) as grpc.status;
  return callError(code, refused?.details ?? 'refused', refusalMetadata(refused?.refusal));
}

/**
 * A worker's push-pulls to one shard as the messages of one long-lived stream (SegmentSession on
 * one machine, ChunkSession across machines) instead of a call each: grpc-js spends far more CPU
 * on each side setting up and tearing down a call than on a message of an open stream (figures
 * in the README). The shard answers in order, so the oldest waiting request reads each answer.
 *
 * A request has a deadline and takes an AbortSignal like a call, but a stream cannot drop one
 * request: a deadline, an abort, or a broken stream ends the whole stream, and every request on
 * it fails with that status (its outcome unknown, as for a call); the next request opens a new
 * stream. A shard without the method (UNIMPLEMENTED) makes `supported` false for good.
 */
export class PushSession<Out, In> {
  private open: Open<Out, In> | undefined;
  private unsupported = false;

  constructor(
    private readonly start: () => SessionCall<Out, In>,
    private readonly deadlineMs: number,
  ) {}

  get supported(): boolean {
    return !this.unsupported;
  }

  /**
   * Sends `messages` (one request) and resolves to its reply as `read` assembles it, failing
   * past `deadline` (default: the session's deadlineMs from now).
   */
  request(
    messages: Iterable<Out>,
    read: AnswerReader<In>,
    signal?: AbortSignal,
    deadline?: Date,
  ): Promise<PushReply__Output> {
    if (signal?.aborted) {
      return Promise.reject(callError(grpc.status.CANCELLED, 'cancelled before it was sent'));
    }
    const open = (this.open ??= this.openStream());
    return new Promise<PushReply__Output>((resolve, reject) => {
      const onAbort = (): void =>
        this.end(open, callError(grpc.status.CANCELLED, 'cancelled by the caller'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const waitMs = deadline ? Math.max(0, deadline.getTime() - Date.now()) : this.deadlineMs;
      const timer = setTimeout(
        () =>
          this.end(open, callError(grpc.status.DEADLINE_EXCEEDED, `no answer within ${waitMs} ms`)),
        waitMs,
      );
      const unsubscribe = (): void => signal?.removeEventListener('abort', onAbort);
      open.waiting.push({ read, resolve, reject, timer, unsubscribe });
      open.outbox.push(messages[Symbol.iterator]());
      if (!open.sending) void this.send(open);
    });
  }

  /**
   * As `request`, or `withoutSession()` where the shard has no such stream: its UNIMPLEMENTED
   * means it ran nothing, so the request goes again as a call.
   */
  async requestOr(
    messages: Iterable<Out>,
    read: AnswerReader<In>,
    withoutSession: () => Promise<PushReply__Output>,
    signal?: AbortSignal,
    deadline?: Date,
  ): Promise<PushReply__Output> {
    if (this.supported) {
      try {
        return await this.request(messages, read, signal, deadline);
      } catch (err) {
        if (this.supported) throw err;
      }
    }
    return withoutSession();
  }

  close(): void {
    if (this.open) this.end(this.open, callError(grpc.status.CANCELLED, 'the client closed'));
  }

  private openStream(): Open<Out, In> {
    const open: Open<Out, In> = {
      call: this.start(),
      waiting: [],
      outbox: [],
      sending: false,
      ended: false,
    };
    open.call.on('data', (msg: In) => {
      const waiting = open.waiting[0];
      if (!waiting) {
        this.end(open, callError(grpc.status.INTERNAL, 'the shard answered a request never sent'));
        return;
      }
      let outcome: ReturnType<AnswerReader<In>>;
      try {
        outcome = waiting.read(msg);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        this.end(open, callError(grpc.status.INTERNAL, `a session answer: ${why}`));
        return;
      }
      if (!outcome) return;
      open.waiting.shift();
      clearTimeout(waiting.timer);
      waiting.unsubscribe();
      if ('reply' in outcome) waiting.resolve(outcome.reply);
      else waiting.reject(outcome.refused);
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

  /** Writes the outbox's requests with backpressure; the first messages go out before it returns. */
  private async send(open: Open<Out, In>): Promise<void> {
    open.sending = true;
    try {
      while (open.outbox.length > 0) {
        const messages = open.outbox[0];
        for (let next = messages.next(); !next.done; next = messages.next()) {
          if (open.ended) return;
          if (!open.call.write(next.value)) await drained(open.call);
        }
        open.outbox.shift();
      }
    } catch (err) {
      // Part of a request may be out: nothing after it on this stream can be read right.
      const known = err as Partial<grpc.ServiceError>;
      const why = known.details ?? (err instanceof Error ? err.message : String(err));
      this.end(open, callError(known.code ?? grpc.status.INTERNAL, why));
    } finally {
      open.sending = false;
    }
  }

  /** Ends `open`'s stream; each request still waiting on it fails with `err`. */
  private end(open: Open<Out, In>, err: grpc.ServiceError): void {
    if (this.open === open) this.open = undefined;
    open.ended = true;
    open.outbox.length = 0;
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
