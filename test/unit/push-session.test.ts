import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { PushHeader } from '../../proto/gen/caviar/v1/PushHeader';
import type { SessionReply__Output } from '../../proto/gen/caviar/v1/SessionReply';
import {
  PushSession,
  refusalError,
  type AnswerReader,
  type SessionCall,
} from '../../core/push-session';
import { callError } from '../../core/grpc-calls';

/** An in-process stand-in for the SegmentSession stream: records writes, plays the shard's side. */
class FakeStream extends EventEmitter {
  readonly written: PushHeader[] = [];
  cancelled = false;
  write(header: PushHeader): boolean {
    this.written.push(header);
    return true;
  }
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('error', callError(grpc.status.CANCELLED, 'cancelled'));
  }
  answer(version: number): void {
    this.emit('data', { reply: { accepted: true, duplicate: false, version } });
  }
}

/** The SegmentSession answer: one message, a reply or a refusal. */
const oneMessage: AnswerReader<SessionReply__Output> = (answer) =>
  answer.reply ? { reply: answer.reply } : { refused: refusalError(answer.refused) };

function session(deadlineMs = 5_000) {
  const streams: FakeStream[] = [];
  const s = new PushSession<PushHeader, SessionReply__Output>(() => {
    const stream = new FakeStream();
    streams.push(stream);
    return stream as unknown as SessionCall<PushHeader, SessionReply__Output>;
  }, deadlineMs);
  return { s, streams };
}

const header = (batch: number): PushHeader => ({ trial: 't', epoch: 0, batch, worker: 'w' });
const code = (expected: grpc.status) => (err: unknown) =>
  (err as { code?: number }).code === expected;

describe('PushSession', () => {
  it('sends requests on one stream and gives each answer to the oldest waiting request', async () => {
    const { s, streams } = session();
    const first = s.request([header(1)], oneMessage);
    const second = s.request([header(2)], oneMessage);
    assert.equal(streams.length, 1);
    assert.deepEqual(
      streams[0].written.map((h) => h.batch),
      [1, 2],
    );
    streams[0].answer(10);
    streams[0].answer(11);
    assert.equal((await first).version, 10);
    assert.equal((await second).version, 11);
    assert.equal(
      (await Promise.all([s.request([header(3)], oneMessage), streams[0].answer(12)]))[0].version,
      12,
    );
    assert.equal(streams.length, 1, 'a new stream was opened');
    s.close();
  });

  it('fails a refused request with its status and keeps the stream', async () => {
    const { s, streams } = session();
    const refused = s.request([header(1)], oneMessage);
    streams[0].emit('data', { refused: { code: grpc.status.INVALID_ARGUMENT, details: 'NaN' } });
    await assert.rejects(refused, (err: unknown) => {
      assert.equal((err as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
      assert.match((err as Error).message, /NaN/);
      return true;
    });
    const next = s.request([header(2)], oneMessage);
    streams[0].answer(3);
    assert.equal((await next).version, 3);
    assert.equal(streams[0].cancelled, false);
    s.close();
  });

  it('past the deadline ends the stream, fails every request on it, and opens a new one next', async () => {
    const { s, streams } = session(30);
    const waiting = [s.request([header(1)], oneMessage), s.request([header(2)], oneMessage)];
    for (const w of waiting) await assert.rejects(w, code(grpc.status.DEADLINE_EXCEEDED));
    assert.equal(streams[0].cancelled, true);
    const next = s.request([header(3)], oneMessage);
    assert.equal(streams.length, 2);
    streams[1].answer(7);
    assert.equal((await next).version, 7);
    s.close();
  });

  it('an abort ends the stream with CANCELLED; a broken or ended stream fails what waits on it', async () => {
    const { s, streams } = session();
    const abort = new AbortController();
    const aborted = s.request([header(1)], oneMessage, abort.signal);
    abort.abort();
    await assert.rejects(aborted, code(grpc.status.CANCELLED));
    await assert.rejects(
      s.request([header(2)], oneMessage, abort.signal),
      code(grpc.status.CANCELLED),
    );

    const broken = s.request([header(3)], oneMessage);
    streams[1].emit('error', callError(grpc.status.UNAVAILABLE, 'connection reset'));
    await assert.rejects(broken, code(grpc.status.UNAVAILABLE));
    const ended = s.request([header(4)], oneMessage);
    streams[2].emit('end');
    await assert.rejects(ended, code(grpc.status.UNAVAILABLE));
    assert.equal(s.supported, true);
    s.close();
  });

  it('a shard without sessions (UNIMPLEMENTED) makes it unsupported for good', async () => {
    const { s, streams } = session();
    const first = s.request([header(1)], oneMessage);
    streams[0].emit('error', callError(grpc.status.UNIMPLEMENTED, 'unknown method'));
    await assert.rejects(first, code(grpc.status.UNIMPLEMENTED));
    assert.equal(s.supported, false);
  });
});
