import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { callError, cancelOnAbort, drained, unaryCall } from '../../core/grpc-calls';

/** A unary call whose answer the test gives; records whether it was cancelled. */
function fakeUnary<Res>(): {
  start: (cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;
  answer: (err: grpc.ServiceError | null, reply?: Res) => void;
  cancelled: () => boolean;
} {
  let callback: grpc.requestCallback<Res> | undefined;
  let cancelled = false;
  const call = Object.assign(new EventEmitter(), {
    cancel: () => {
      cancelled = true;
      callback?.(callError(grpc.status.CANCELLED, 'cancelled'));
    },
  });
  return {
    start: (cb) => {
      callback = cb;
      return call as unknown as grpc.ClientUnaryCall;
    },
    answer: (err, reply) => callback?.(err, reply),
    cancelled: () => cancelled,
  };
}

describe('grpc-calls', () => {
  it('unaryCall resolves to the reply, and an answer without one is INTERNAL', async () => {
    const ok = fakeUnary<{ n: number }>();
    const pending = unaryCall(ok.start);
    ok.answer(null, { n: 1 });
    assert.deepEqual(await pending, { n: 1 });

    const empty = fakeUnary<{ n: number }>();
    const none = unaryCall(empty.start);
    empty.answer(null, undefined);
    await assert.rejects(none, { code: grpc.status.INTERNAL, details: 'empty reply' });
  });

  it('unaryCall cancels on abort, and at once with a signal aborted before the call', async () => {
    const later = new AbortController();
    const a = fakeUnary<object>();
    const first = unaryCall(a.start, later.signal);
    later.abort();
    await assert.rejects(first, { code: grpc.status.CANCELLED });
    assert.ok(a.cancelled());

    const b = fakeUnary<object>();
    await assert.rejects(unaryCall(b.start, AbortSignal.abort()), { code: grpc.status.CANCELLED });
    assert.ok(b.cancelled());
  });

  it('cancelOnAbort stops listening once unsubscribed', () => {
    const controller = new AbortController();
    let cancels = 0;
    const unsubscribe = cancelOnAbort({ cancel: () => cancels++ }, controller.signal);
    unsubscribe();
    controller.abort();
    assert.equal(cancels, 0);
  });

  it('drained resolves on drain, on cancel and on close, and at once for a cancelled call', async () => {
    for (const event of ['drain', 'cancelled', 'close']) {
      const stream = new EventEmitter();
      const waiting = drained(stream);
      stream.emit(event);
      await waiting;
      assert.equal(stream.listenerCount('drain'), 0, `listeners left after ${event}`);
    }
    const cancelled = Object.assign(new EventEmitter(), { cancelled: true });
    await drained(cancelled);
  });
});
