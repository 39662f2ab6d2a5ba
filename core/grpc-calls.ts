import type { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';

/** A failure shaped like the ServiceError a failed gRPC call rejects with. */
export function callError(
  code: grpc.status,
  details: string,
  metadata = new grpc.Metadata(),
): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), {
    code,
    details,
    metadata,
  });
}

/** Cancels `call` when `signal` aborts (at once if it already has); returns the unsubscribe. */
export function cancelOnAbort(
  call: { cancel(): void },
  signal: AbortSignal | undefined,
): () => void {
  if (!signal) return () => {};
  const onAbort = (): void => call.cancel();
  if (signal.aborted) {
    // After the current tick, so the call's callback is attached before it fires.
    queueMicrotask(onAbort);
    return () => {};
  }
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/** Settles a call's promise from its callback: an answer without a message is a failure too. */
function settle<Res>(
  resolve: (reply: Res) => void,
  reject: (err: grpc.ServiceError) => void,
): grpc.requestCallback<Res> {
  return (err, reply) => {
    if (err) reject(err);
    else if (reply === undefined) reject(callError(grpc.status.INTERNAL, 'empty reply'));
    else resolve(reply);
  };
}

/** A unary call as a promise; `signal` cancels it. */
export function unaryCall<Res>(
  start: (callback: grpc.requestCallback<Res>) => grpc.ClientUnaryCall,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const answered = settle(resolve, reject);
    const call = start((err, reply) => {
      unsubscribe();
      answered(err, reply);
    });
    const unsubscribe = cancelOnAbort(call, signal);
  });
}

/** A stream of either side that can push back on writes and end (or be cancelled). */
type DrainingStream = Pick<EventEmitter, 'on' | 'off'> & { readonly cancelled?: boolean };

/**
 * Resolves when `stream` can take more, or once it will never drain because it ended: a
 * cancelled or closed call emits no 'drain', and waiting for one would hold the writer forever.
 */
export function drained(stream: DrainingStream): Promise<void> {
  if (stream.cancelled) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done).off('cancelled', done).off('close', done);
      resolve();
    };
    stream.on('drain', done).on('cancelled', done).on('close', done);
  });
}

/**
 * Writes `messages` to `call` with backpressure, then ends the stream; stops early, without
 * ending it, once `stop()` says so (the server already answered).
 */
export async function writeAll<Req>(
  call: grpc.ClientWritableStream<Req> | grpc.ClientDuplexStream<Req, unknown>,
  messages: Iterable<Req>,
  stop: () => boolean,
): Promise<void> {
  for (const msg of messages) {
    if (stop()) return;
    if (!call.write(msg)) await drained(call);
  }
  if (!stop()) call.end();
}

/**
 * Runs a client-streaming call: writes `messages` with backpressure, then ends the stream. Stops
 * writing as soon as the server answers (a refusal can come before the last chunk).
 */
export function clientStream<Req, Res>(
  start: (callback: grpc.requestCallback<Res>) => grpc.ClientWritableStream<Req>,
  messages: Iterable<Req>,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    let finished = false;
    const answered = settle(resolve, reject);
    const call = start((err, reply) => {
      finished = true;
      unsubscribe();
      answered(err, reply);
    });
    const unsubscribe = cancelOnAbort(call, signal);
    writeAll(call, messages, () => finished).catch((err: unknown) => {
      call.cancel();
      reject(err);
    });
  });
}
