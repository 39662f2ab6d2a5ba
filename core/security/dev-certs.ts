import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import forge from 'node-forge';
import { TLS_ROLES, tlsFiles } from './tls-identity';

/** Every certificate `caviar certs` mints: the roles', and etcd's for a cluster's own etcd. */
export const MINTED_NAMES = [...TLS_ROLES, 'etcd'] as const;

export interface MintOptions {
  dir: string;
  /** Host names and addresses the servers are reached at, besides localhost and this host. */
  hosts: readonly string[];
  days: number;
  /** Replace a set already in `dir` (otherwise refused: the roles' certificates would break). */
  force: boolean;
}

interface KeyPair {
  forgePrivate: forge.pki.rsa.PrivateKey;
  forgePublic: forge.pki.rsa.PublicKey;
  pem: string;
}

// Node's key generation is native; forge's own would take half a second a key.
function newKeyPair(): KeyPair {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  return {
    forgePrivate: forge.pki.privateKeyFromPem(pkcs1),
    forgePublic: forge.pki.publicKeyFromPem(
      publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ),
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: a leading 0x01 keeps DER from reading the top bit as a sign.
  cert.serialNumber = '01' + crypto.randomBytes(15).toString('hex');
  // A minute back, so a peer whose clock is slightly behind accepts it at once.
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  return cert;
}

function subject(commonName: string): forge.pki.CertificateField[] {
  return [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'caviar' },
  ];
}

/** The subject alternative names every server certificate carries. */
export function serverNames(extra: readonly string[]): string[] {
  const names = ['localhost', '127.0.0.1', '::1', os.hostname(), ...extra];
  return [...new Set(names.map((n) => n.trim()).filter(Boolean))];
}

function altName(name: string): { type: number; value?: string; ip?: string } {
  return net.isIP(name) ? { type: 7, ip: name } : { type: 2, value: name };
}

function writePrivate(file: string, text: string): void {
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

/**
 * Mints a development CA and a certificate per role (CN = the role, server and client use,
 * SANs for every host given) into `dir`; returns the files written. The CA's key stays in `dir`
 * so more hosts can be added by minting again with --force.
 */
export function mintDevelopmentCerts(options: MintOptions): string[] {
  const { dir, days } = options;
  fs.mkdirSync(dir, { recursive: true });
  const caFile = path.join(dir, 'ca.pem');
  if (!options.force && fs.existsSync(caFile))
    throw new Error(`${caFile} exists; pass --force to mint a new set (every role needs it then)`);
  const caKeys = newKeyPair();
  const ca = newCertificate(caKeys.forgePublic, days);
  // A name per set, so two sets' certificates are told apart by name before their signatures.
  const caName = `caviar development CA ${crypto.randomBytes(4).toString('hex')}`;
  ca.setSubject(subject(caName));
  ca.setIssuer(subject(caName));
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.forgePrivate, forge.md.sha256.create());
  const written = [caFile, path.join(dir, 'ca-key.pem')];
  fs.writeFileSync(caFile, forge.pki.certificateToPem(ca));
  writePrivate(written[1]!, caKeys.pem);
  const altNames = serverNames(options.hosts).map(altName);
  for (const name of MINTED_NAMES) {
    const keys = newKeyPair();
    const cert = newCertificate(keys.forgePublic, days);
    cert.setSubject(subject(name));
    cert.setIssuer(ca.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(caKeys.forgePrivate, forge.md.sha256.create());
    const files = tlsFiles(dir, name);
    fs.writeFileSync(files.cert, forge.pki.certificateToPem(cert));
    writePrivate(files.key, keys.pem);
    written.push(files.cert, files.key);
  }
  return written;
}
