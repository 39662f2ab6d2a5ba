import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';

/** A failure that maps to one gRPC status; handlers throw these and `toServiceError` converts them in one place. */
export class CaviarError extends Error {
  constructor(
    readonly code: status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InvalidArgumentError extends CaviarError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.INVALID_ARGUMENT, message, options);
  }
}

export class NotFoundError extends CaviarError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.NOT_FOUND, message, options);
  }
}

export class AlreadyExistsError extends CaviarError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.ALREADY_EXISTS, message, options);
  }
}

export class FailedPreconditionError extends CaviarError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.FAILED_PRECONDITION, message, options);
  }
}

/**
 * A request that would take more than there is (a trial too large for the shards' memory). Not
 * worth retrying as it is, unlike grpc-js's own RESOURCE_EXHAUSTED for a full buffer.
 */
export class ResourceExhaustedError extends CaviarError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.RESOURCE_EXHAUSTED, message, options);
  }
}

export class DeadlineExceededError extends CaviarError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.DEADLINE_EXCEEDED, message, options);
  }
}

/** Any thrown value as the error object a grpc-js handler passes to its callback. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  if (err instanceof CaviarError)
    return { code: err.code, details: err.message, metadata: new Metadata() };
  const message = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details: message, metadata: new Metadata() };
}

/** The message of an error from a gRPC call, without grpc-js's "N CODE: " prefix. */
export function errorMessage(err: unknown): string {
  if (
    err &&
    typeof err === 'object' &&
    'details' in err &&
    typeof err.details === 'string' &&
    err.details
  ) {
    return err.details;
  }
  return err instanceof Error ? err.message : String(err);
}
