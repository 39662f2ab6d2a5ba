import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../core/errors';
import { FencedError, type RefusalReason } from '../core/call-status';

export { FencedError, type RefusalReason } from '../core/call-status';

/** An INVALID_ARGUMENT that also says which refusal counter it belongs to. */
export class RefusedInputError extends InvalidArgumentError {
  constructor(
    readonly reason: 'non_finite' | 'bad_shape' | 'bad_header',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The counter a failed push belongs to, or undefined for failures that are not refusals. */
export function refusalReason(err: unknown): RefusalReason | undefined {
  if (err instanceof RefusedInputError) return err.reason;
  if (err instanceof FencedError) return 'fenced';
  if (err instanceof NotFoundError) return 'unknown_trial';
  if (err instanceof FailedPreconditionError) return 'stale';
  // Codec errors (a byte count not a multiple of 4, a chunk outside its slice) are shape errors.
  if (err instanceof InvalidArgumentError) return 'bad_shape';
  return undefined;
}
