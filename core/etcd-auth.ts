import * as crypto from 'node:crypto';
import { Range, type Etcd3 } from 'etcd3';
import { createEtcdClient } from './etcd-client';
import type { TlsIdentity } from './security/tls-identity';

/** The etcd keys caviar reads and writes (an etcd role for caviar grants these). */
export const CAVIAR_KEY_PREFIXES = ['/caviar/', 'election//caviar/'] as const;

export interface EtcdUser {
  username: string;
  password: string;
}

/**
 * Turns authentication on in an etcd that has it off: a root user (etcd refuses to enable auth
 * without one holding the root role) and `user`, whose role may read and write only the keys
 * under `prefixes`: by default caviar's members, trials and sweeps, and its coordinator
 * election, whose keys etcd3 puts under "election/".
 */
export async function enableEtcdAuth(
  client: Etcd3,
  root: EtcdUser,
  user: EtcdUser,
  prefixes: readonly string[] = CAVIAR_KEY_PREFIXES,
): Promise<void> {
  await client.role('root').create();
  await client.user(root.username).create(root.password);
  await client.user(root.username).addRole('root');
  const role = await client.role(user.username).create();
  for (const prefix of prefixes)
    await role.grant({ permission: 'Readwrite', range: Range.prefix(prefix) });
  await client.user(user.username).create(user.password);
  await client.user(user.username).addRole(role);
  await client.auth.authEnable({});
}

/**
 * Secures a fresh local etcd that serves TLS: auth on, a random root password nobody keeps (the
 * etcd lives as long as its cluster), and the returned user for the roles.
 */
export async function enableLocalEtcdAuth(url: string, identity: TlsIdentity): Promise<EtcdUser> {
  const client = createEtcdClient([url], { tls: identity });
  const secret = (): string => crypto.randomBytes(18).toString('base64url');
  const user = { username: 'caviar', password: secret() };
  try {
    await enableEtcdAuth(client, { username: 'root', password: secret() }, user);
  } finally {
    client.close();
  }
  return user;
}
