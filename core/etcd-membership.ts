import { EventEmitter } from 'node:events';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import { createEtcdClient, type EtcdSecurity } from './etcd-client';
import {
  memberKey,
  memberPrefix,
  type MemberInfo,
  type Membership,
  type MembershipEvent,
  type MembershipWatch,
  type Registration,
  type Role,
} from './membership';

export interface EtcdMembershipOptions {
  /** etcd client URLs, e.g. ["http://127.0.0.1:2379"]. */
  endpoints: string[];
  /** Names the key space: /caviar/<cluster>/... Defaults to "default". */
  cluster?: string;
  /** Seconds a member stays registered without a keepalive. Defaults to 3. */
  ttlSeconds?: number;
  /** Deadline of each etcd call. Defaults to 5 s. */
  callTimeoutMs?: number;
  /** Client certificate and user for a secured etcd. Defaults to none. */
  security?: EtcdSecurity;
}

class EtcdRegistration extends EventEmitter implements Registration {
  private lost = false;

  constructor(
    private readonly membershipLease: Lease,
    readonly token: string,
    readonly key: string,
  ) {
    super();
    membershipLease.on('lost', (err) => {
      this.lost = true;
      this.emit('lost', err);
    });
  }

  isLost(): boolean {
    return this.lost || this.membershipLease.revoked();
  }

  async close(): Promise<void> {
    this.lost = true;
    await this.membershipLease.revoke().catch(() => this.membershipLease.release());
  }
}

function parseMember(
  value: Buffer | undefined,
  lease: string | number | undefined,
): MemberInfo | undefined {
  if (!value) return undefined;
  try {
    const info = JSON.parse(value.toString()) as MemberInfo;
    return { ...info, token: String(lease ?? info.token ?? '') };
  } catch {
    return undefined;
  }
}

/** Membership on etcd: each member a key under /caviar/<cluster>/members/<role>/<id> on its own lease. */
export class EtcdMembership implements Membership {
  readonly kind = 'etcd' as const;
  readonly cluster: string;
  private readonly client: Etcd3;
  private readonly ttlSeconds: number;

  constructor(options: EtcdMembershipOptions) {
    if (options.endpoints.length === 0)
      throw new Error('etcd membership needs at least one endpoint');
    this.cluster = options.cluster ?? 'default';
    this.ttlSeconds = options.ttlSeconds ?? 3;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1)
      throw new Error('the membership TTL must be a whole number of seconds >= 1');
    this.client = createEtcdClient(options.endpoints, options.security, options.callTimeoutMs);
  }

  async register(info: MemberInfo): Promise<Registration> {
    const lease = this.client.lease(this.ttlSeconds);
    const token = await lease.grant();
    const key = memberKey(this.cluster, info.role, info.id);
    await lease.put(key).value(JSON.stringify({ ...info, token }));
    return new EtcdRegistration(lease, token, key);
  }

  async list(role?: Role): Promise<MemberInfo[]> {
    const response = await this.client.getAll().prefix(memberPrefix(this.cluster, role)).exec();
    return response.kvs
      .map((kv) => parseMember(kv.value, kv.lease))
      .filter((m): m is MemberInfo => m !== undefined);
  }

  /** Lists the members, then follows changes from the revision of that listing, so nothing falls between. */
  async watch(onEvent: (event: MembershipEvent) => void, role?: Role): Promise<MembershipWatch> {
    const prefix = memberPrefix(this.cluster, role);
    const response = await this.client.getAll().prefix(prefix).exec();
    const members = response.kvs
      .map((kv) => parseMember(kv.value, kv.lease))
      .filter((m): m is MemberInfo => m !== undefined);
    const revision = String(Number(response.header.revision) + 1);
    const watcher: Watcher = await this.client
      .watch()
      .prefix(prefix)
      .startRevision(revision)
      .withPreviousKV()
      .create();
    watcher.on('put', (kv) => {
      const member = parseMember(kv.value, kv.lease);
      if (member) onEvent({ type: 'join', member });
    });
    watcher.on('delete', (kv, previous) => {
      const member =
        parseMember(previous?.value, previous?.lease) ?? memberFromKey(kv.key.toString(), prefix);
      if (member) onEvent({ type: 'leave', member });
    });
    // Reconnects are handled by etcd3; an error here is logged by the owner through 'leave' events only.
    watcher.on('error', () => undefined);
    return { members, close: () => watcher.cancel() };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

function memberFromKey(key: string, prefix: string): MemberInfo | undefined {
  const rest = key.startsWith(prefix) ? key.slice(prefix.length) : '';
  const parts = rest.split('/');
  const [role, id] = parts.length === 2 ? parts : [prefix.split('/').slice(-2)[0], parts[0]];
  if (!id || !['coordinator', 'ps', 'worker'].includes(role)) return undefined;
  return { role: role as Role, id };
}
