import { Etcd3, type IOptions } from 'etcd3';
import { muteIpServerNameWarning } from './security/tls-identity';

/**
 * How a role proves itself to etcd: its certificate for https endpoints (etcd run with
 * --client-cert-auth) and a user with a password (etcd with auth enabled). PEM bytes are
 * Uint8Arrays so the registration thread's workerData carries them as they are.
 */
export interface EtcdSecurity {
  tls?: { ca: Uint8Array; cert: Uint8Array; key: Uint8Array };
  auth?: { username: string; password: string };
}

/** An etcd client whose unary calls all have a deadline (streams have none: they are long-lived). */
export function createEtcdClient(
  endpoints: readonly string[],
  security: EtcdSecurity = {},
  callTimeoutMs = 5_000,
): Etcd3 {
  if (endpoints.length === 0) throw new Error('etcd needs at least one endpoint');
  const options: IOptions = {
    hosts: [...endpoints],
    dialTimeout: callTimeoutMs,
    defaultCallOptions: (context) =>
      context.isStream ? {} : { deadline: Date.now() + callTimeoutMs },
  };
  const { tls, auth } = security;
  if (tls) {
    muteIpServerNameWarning();
    options.credentials = {
      rootCertificate: Buffer.from(tls.ca),
      certChain: Buffer.from(tls.cert),
      privateKey: Buffer.from(tls.key),
    };
  }
  if (auth)
    options.auth = {
      ...auth,
      callOptions: () => ({ deadline: Date.now() + callTimeoutMs }),
    };
  return new Etcd3(options);
}
