import * as grpc from '@grpc/grpc-js';
import { CaviarError, toServiceError } from '../core/errors';
import { hit } from '../core/fault-points';
import { refusalMetadata, refusalOf } from '../core/call-status';
import type { CallStatus } from '../proto/gen/caviar/v1/CallStatus';
import { refusalReason } from './refusal';
import type { Logger } from '../core/log';

/** How the shard's handlers turn an outcome into a gRPC reply or status, logging what failed. */
export class ShardReplies {
  constructor(private readonly logger: Logger | undefined) {}

  /** Runs a unary handler and answers its callback with the value or the status. */
  reply<T>(run: () => T | Promise<T>, callback: grpc.sendUnaryData<T>): void {
    Promise.resolve()
      .then(run)
      .then(
        (value) => callback(null, value),
        (err: unknown) => callback(this.toStatus(err, 'call')),
      );
  }

  /** Runs a streaming handler; a failure ends the call with its status. */
  stream(
    call: { emit(event: 'error', err: unknown): unknown },
    what: string,
    run: () => Promise<void>,
  ): void {
    run().catch((err: unknown) => call.emit('error', this.toStatus(err, what)));
  }

  /** A failure as a session stream's answer carries it: the status, and the refusal's reason. */
  callStatus(err: unknown, what: string): CallStatus {
    const status = this.toStatus(err, what);
    return { code: status.code, details: status.details, refusal: refusalOf(status) ?? '' };
  }

  toStatus(err: unknown, what: string): Partial<grpc.ServiceError> {
    // Callers classify a refusal by its reason, not by a status code several refusals share.
    const serviceError = { ...toServiceError(err), metadata: refusalMetadata(refusalReason(err)) };
    if (serviceError.code === grpc.status.INTERNAL) this.logger?.error({ err }, `${what} failed`);
    else
      this.logger?.debug(
        { code: serviceError.code, details: serviceError.details },
        `${what} refused`,
      );
    return serviceError;
  }
}

/**
 * Fault tests lose a push's answer after the push applied, on every transport: the worker's
 * retry must be deduplicated. True when this answer is to be lost.
 */
export function losesPushAnswer(): boolean {
  return hit('drop-push-reply');
}

/** A unary push's callback that loses its successful answer under the fault above. */
export function pushCallback<T>(callback: grpc.sendUnaryData<T>): grpc.sendUnaryData<T> {
  return (err, value) => (!err && losesPushAnswer() ? undefined : callback(err, value));
}

/** What consume reads: a client-streaming or a bidi call. */
export type ReadableCall<T> =
  grpc.ServerReadableStream<T, unknown> | grpc.ServerDuplexStream<T, unknown>;

/** Feeds each message of a client stream to `onMessage`; settles at its end or first failure. */
export function consume<T>(call: ReadableCall<T>, onMessage: (msg: T) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      reject(err);
    };
    // Messages after a failure are still read (and dropped) so the stream drains.
    call.on('data', (msg: T) => {
      if (failed) return;
      try {
        onMessage(msg);
      } catch (err) {
        fail(err);
      }
    });
    call.on('end', () => {
      if (!failed) resolve();
    });
    call.on('error', fail);
    call.on('cancelled', () =>
      fail(new CaviarError(grpc.status.CANCELLED, 'cancelled by the client')),
    );
  });
}
