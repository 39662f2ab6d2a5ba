import * as fs from 'node:fs';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';

/**
 * Who a certificate speaks for: its subject's CN. The shard and the coordinator authorize each
 * call by it (core/security/rpc-access.ts), so a worker's key cannot submit or drop trials.
 */
export const TLS_ROLES = ['coordinator', 'ps', 'worker', 'client'] as const;
export type TlsRole = (typeof TLS_ROLES)[number];

/** A role's TLS material, as read from a `--tls DIR` folder. */
export interface TlsIdentity {
  dir: string;
  role: TlsRole;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** A TLS folder that cannot be used: names the file and what is wrong with it. */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

/** The files of a TLS folder: ca.pem, and <name>.pem with <name>-key.pem per role (and etcd). */
export function tlsFiles(dir: string, name: string): { ca: string; cert: string; key: string } {
  return {
    ca: path.join(dir, 'ca.pem'),
    cert: path.join(dir, `${name}.pem`),
    key: path.join(dir, `${name}-key.pem`),
  };
}

function readPem(file: string, what: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
    throw new TlsConfigError(`TLS ${what} ${file} is ${reason} (caviar certs DIR mints a set)`);
  }
  if (!bytes.includes('-----BEGIN ')) throw new TlsConfigError(`TLS ${what} ${file} is not PEM`);
  return bytes;
}

/** The CN of a certificate's subject ("" when it has none). */
function commonName(subject: string | undefined): string {
  for (const line of (subject ?? '').split('\n')) {
    const [key, ...rest] = line.split('=');
    if (key?.trim() === 'CN') return rest.join('=').trim();
  }
  return '';
}

/** Reads and checks `role`'s certificate, key and the CA from `dir`. */
export function loadTlsIdentity(dir: string, role: TlsRole): TlsIdentity {
  const files = tlsFiles(dir, role);
  const ca = readPem(files.ca, 'CA certificate');
  const cert = readPem(files.cert, `${role} certificate`);
  const key = readPem(files.key, `${role} key`);
  let parsed: X509Certificate;
  let authority: X509Certificate;
  try {
    parsed = new X509Certificate(cert);
    authority = new X509Certificate(ca);
  } catch (err) {
    throw new TlsConfigError(
      `TLS certificate in ${dir} cannot be parsed: ${(err as Error).message}`,
    );
  }
  // checkIssued compares names only; verify checks the signature.
  if (!parsed.checkIssued(authority) || !parsed.verify(authority.publicKey))
    throw new TlsConfigError(`TLS ${files.cert} is not signed by ${files.ca}`);
  const cn = commonName(parsed.subject);
  if (cn !== role)
    throw new TlsConfigError(`TLS ${files.cert} is for "${cn}", not the ${role} role`);
  if (Date.parse(parsed.validTo) < Date.now())
    throw new TlsConfigError(`TLS ${files.cert} expired on ${parsed.validTo}`);
  return { dir, role, ca, cert, key };
}

/** Server credentials: mutual TLS (client certificates required and checked) or plaintext. */
export function serverCredentials(identity: TlsIdentity | undefined): grpc.ServerCredentials {
  if (!identity) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    identity.ca,
    [{ private_key: identity.key, cert_chain: identity.cert }],
    true,
  );
}

let ipServerNameWarningMuted = false;

/**
 * grpc-js passes an IP target as the TLS server name, and Node warns (DEP0123) once per process:
 * on every CLI call to 127.0.0.1. The certificate is still checked against the address (IP
 * SANs), so the warning says nothing a user could act on; every other warning passes through.
 */
export function muteIpServerNameWarning(): void {
  if (ipServerNameWarningMuted) return;
  ipServerNameWarningMuted = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const [, type, code] = args;
    const named =
      typeof type === 'object' && type !== null ? (type as { code?: unknown }).code : code;
    if (named !== 'DEP0123') emit(...args);
  }) as typeof process.emitWarning;
}

/** Channel credentials presenting this role's certificate, or plaintext. */
export function channelCredentials(identity: TlsIdentity | undefined): grpc.ChannelCredentials {
  if (!identity) return grpc.credentials.createInsecure();
  muteIpServerNameWarning();
  return grpc.credentials.createSsl(identity.ca, identity.key, identity.cert);
}
