import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, status } from '@grpc/grpc-js';
import {
  FencedError,
  REFUSAL_KEY,
  isDefiniteAnswer,
  isRetryable,
  isTransientRefusal,
  isUserError,
  refusalMetadata,
  refusalOf,
} from '../../core/call-status';
import { FailedPreconditionError, toServiceError } from '../../core/errors';
import { RefusedInputError, refusalReason } from '../../ps/refusal';
import { exitCodeOf } from '../../client/exit-codes';

/** A failed call as grpc-js hands it to a client: a code, details and the server's metadata. */
function failedCall(code: status, refusal?: string) {
  const metadata = new Metadata();
  if (refusal !== undefined) metadata.set(REFUSAL_KEY, refusal);
  return { code, details: 'refused', metadata };
}

describe('call status classification', () => {
  it('reads fencing from the refusal a shard names, not from FAILED_PRECONDITION alone', () => {
    assert.equal(refusalOf(failedCall(status.FAILED_PRECONDITION, 'fenced')), 'fenced');
    assert.equal(refusalOf(failedCall(status.FAILED_PRECONDITION)), undefined);
    assert.equal(refusalOf(failedCall(status.FAILED_PRECONDITION, 'no-such-reason')), undefined);
    assert.equal(isTransientRefusal(failedCall(status.FAILED_PRECONDITION)), false);
    assert.equal(isTransientRefusal(failedCall(status.FAILED_PRECONDITION, 'stale')), true);
    assert.equal(isTransientRefusal(failedCall(status.INVALID_ARGUMENT, 'non_finite')), false);
    // A worker that knows its own membership lease is gone refuses itself the same way.
    const own = new FencedError('lost its membership lease');
    assert.equal(own.code, status.FAILED_PRECONDITION);
    assert.equal(isTransientRefusal(own), true);
  });

  it('a shard-side refusal travels as metadata the client side reads back', () => {
    for (const [err, reason] of [
      [new FencedError('fenced'), 'fenced'],
      [new FailedPreconditionError('step 3 is already applied'), 'stale'],
      [new RefusedInputError('non_finite', 'NaN'), 'non_finite'],
    ] as const) {
      const sent = { ...toServiceError(err), metadata: refusalMetadata(refusalReason(err)) };
      assert.equal(refusalOf(sent), reason);
    }
    assert.equal(refusalMetadata(undefined).get(REFUSAL_KEY).length, 0);
  });

  it('sorts codes into retryable, definite answers and user errors', () => {
    assert.equal(isRetryable(failedCall(status.UNAVAILABLE)), true);
    assert.equal(isRetryable(failedCall(status.DEADLINE_EXCEEDED)), true);
    assert.equal(isRetryable(failedCall(status.FAILED_PRECONDITION)), false);
    assert.equal(isRetryable(new Error('no code')), false);
    assert.equal(isDefiniteAnswer(failedCall(status.NOT_FOUND)), true);
    assert.equal(
      isDefiniteAnswer(failedCall(status.DEADLINE_EXCEEDED)),
      false,
      'may still be at work',
    );
    assert.equal(isDefiniteAnswer(failedCall(status.CANCELLED)), false);
    assert.equal(isUserError(failedCall(status.RESOURCE_EXHAUSTED)), true);
    assert.equal(exitCodeOf(failedCall(status.PERMISSION_DENIED)), 2);
    assert.equal(exitCodeOf(failedCall(status.UNAVAILABLE)), 1);
  });
});
