import { Metadata, status } from '@grpc/grpc-js';
import { FailedPreconditionError } from './errors';

/**
 * What a caller makes of a failed call, in one place: whether to retry it, whether the server
 * answered it outright, which refusal it was, and whether the user can fix it (CLI exit 2).
 */

/** Why a shard turned a push away: the keys of ShardStats.refused, and a refused call's metadata. */
const REFUSAL_REASONS = [
  'non_finite',
  'bad_shape',
  'bad_header',
  'unknown_trial',
  'duplicate',
  'stale',
  'fenced',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** The metadata key a shard's refusal names its reason under (and CallStatus.refusal carries). */
export const REFUSAL_KEY = 'caviar-refusal';

/**
 * A push from a sender whose membership lease is gone: FAILED_PRECONDITION, never applied. A
 * worker that knows its lease is lost refuses itself with it too.
 */
export class FencedError extends FailedPreconditionError {
  readonly refusal = 'fenced';
}

/** Whether a failed call's status code is one of `codes`. */
function hasCodeIn(codes: ReadonlySet<number>): (err: unknown) => boolean {
  return (err) => {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'number' && codes.has(code);
  };
}

const RETRYABLE = new Set<number>([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
]);

/** Whether a failed call may be tried again with the same idempotency key. */
export const isRetryable = hasCodeIn(RETRYABLE);

/** Statuses with which a shard refuses a call outright, before or without touching its region. */
const DEFINITE_ANSWERS = new Set<number>([
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.FAILED_PRECONDITION,
  status.ALREADY_EXISTS,
  status.RESOURCE_EXHAUSTED,
  status.OUT_OF_RANGE,
  status.UNIMPLEMENTED,
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
]);

/**
 * Whether the server answered the call itself, so nothing it was given is still at work (unlike
 * a deadline, a cancel or a broken connection, after which it may be).
 */
export const isDefiniteAnswer = hasCodeIn(DEFINITE_ANSWERS);

/** Metadata naming a refusal (none for "" or undefined), for the status a shard answers with. */
export function refusalMetadata(reason: string | undefined): Metadata {
  const metadata = new Metadata();
  if (reason) metadata.set(REFUSAL_KEY, reason);
  return metadata;
}

/** The refusal a failed call was: from the error itself, or the status metadata a shard sent. */
export function refusalOf(err: unknown): RefusalReason | undefined {
  const own = (err as { refusal?: unknown } | null)?.refusal;
  const sent = (err as { metadata?: unknown } | null)?.metadata;
  const value =
    typeof own === 'string' ? own : sent instanceof Metadata ? sent.get(REFUSAL_KEY)[0] : undefined;
  return REFUSAL_REASONS.find((reason) => reason === value);
}

/**
 * Refusals that are no fault of the trial: a fenced sender (its membership lease ended; it
 * registers again), a push for a step already applied (the batch runs again elsewhere).
 */
export function isTransientRefusal(err: unknown): boolean {
  const reason = refusalOf(err);
  return reason === 'fenced' || reason === 'stale';
}

const USER_ERROR_CODES = new Set<number>([
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  // A model too large for the cluster: a smaller model, more shards or a higher --max-memory.
  status.RESOURCE_EXHAUSTED,
  // A certificate for the wrong role, or none: another --tls folder.
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
]);

/** Whether a failed call's status is one the user fixes by changing the command. */
export const isUserError = hasCodeIn(USER_ERROR_CODES);
