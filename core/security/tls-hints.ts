import { status, type ServiceError } from '@grpc/grpc-js';

// The server is down or unreachable: nothing to do with TLS.
const NOT_TLS = /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EAI_AGAIN/;
const CERTIFICATE = /certificate|unknown ca|bad certificate|handshake failure|self.signed/i;
const PLAINTEXT_PEER = /wrong version number|packet length too long|http request/i;

/** The "Last error" grpc-js puts in an UNAVAILABLE's details, without its trailer. */
function lastError(details: string): string | undefined {
  const match = /Last error: (?:Error: )?([\s\S]*?)(?:\s*\. Resolution note:[\s\S]*)?$/.exec(
    details,
  );
  return match?.[1]
    ?.replace(/\s+/g, ' ')
    .replace(/ \(\d{4}-[^)]*\)$/, '')
    .trim();
}

function withDetails(err: ServiceError, code: status, details: string): ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: err.metadata });
}

/**
 * grpc-js reports a failed TLS handshake as a bare UNAVAILABLE ("Failed to connect", an OpenSSL
 * record error): the server never gets to send a status, so the client names the likely cause.
 * A certificate the other side rejects becomes UNAUTHENTICATED; other errors pass unchanged.
 */
export function explainTlsFailure(err: ServiceError, address: string, tls: boolean): ServiceError {
  if (err.code !== status.UNAVAILABLE) return err;
  const reason = lastError(err.details ?? '');
  if (reason === undefined || NOT_TLS.test(reason)) return err;
  if (!tls)
    return withDetails(
      err,
      status.UNAVAILABLE,
      `${address} dropped a plaintext connection (${reason}): if the cluster runs with mutual TLS, pass --tls DIR or set CAVIAR_TLS_DIR`,
    );
  if (PLAINTEXT_PEER.test(reason))
    return withDetails(
      err,
      status.UNAVAILABLE,
      `${address} answered a TLS handshake in plaintext: it runs without --tls (drop --tls here, or start it with --tls DIR)`,
    );
  if (CERTIFICATE.test(reason))
    return withDetails(
      err,
      status.UNAUTHENTICATED,
      `mutual TLS with ${address} failed: ${reason}; both sides need certificates signed by the same ca.pem (caviar certs DIR)`,
    );
  return withDetails(
    err,
    status.UNAVAILABLE,
    `mutual TLS with ${address} failed (${reason}): the server dropped the handshake; is this certificate signed by the ca.pem of its --tls folder?`,
  );
}
