import * as grpc from '@grpc/grpc-js';
import type { TlsIdentity, TlsRole } from './tls-identity';

/** The roles allowed to call each method of a service, by method name. */
export type AccessPolicy = Readonly<Record<string, readonly TlsRole[]>>;

const ANY_ROLE: readonly TlsRole[] = ['coordinator', 'ps', 'worker', 'client'];

/**
 * A shard's callers: workers move gradients and values; only the coordinator places, drops and
 * steers trials (and pulls a trial's values for GetParameters and exports).
 */
export const SHARD_ACCESS: AccessPolicy = {
  Init: ['coordinator'],
  Drop: ['coordinator'],
  Stats: ['coordinator'],
  Applied: ['coordinator'],
  SetLearningRate: ['coordinator'],
  Capacity: ['coordinator'],
  Pull: ['worker', 'coordinator'],
  Push: ['worker'],
  PushPull: ['worker'],
  Attach: ['worker'],
  SegmentPush: ['worker'],
  SegmentPushPull: ['worker'],
  SegmentPull: ['worker'],
  SegmentSession: ['worker'],
  ChunkSession: ['worker'],
};

/** The coordinator's callers: the CLI's identity submits and steers, workers take work, all read. */
export const COORDINATOR_ACCESS: AccessPolicy = {
  SubmitTrial: ['client'],
  StopTrial: ['client'],
  TuneTrial: ['client'],
  PauseTrial: ['client'],
  ResumeTrial: ['client'],
  SubmitSweep: ['client'],
  RegisterWorker: ['worker'],
  AcquireWork: ['worker'],
  CompleteWork: ['worker'],
  GetTrial: ANY_ROLE,
  ListTrials: ANY_ROLE,
  WatchTrial: ANY_ROLE,
  GetParameters: ANY_ROLE,
  GetFrozenParameters: ANY_ROLE,
  ClusterInfo: ANY_ROLE,
  GetSweep: ANY_ROLE,
  ListSweeps: ANY_ROLE,
  WatchSweep: ANY_ROLE,
};

/** "/caviar.v1.Coordinator/SubmitTrial" → "SubmitTrial". */
function methodName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Why `role` may not call `path` under `policy`, or undefined when it may. */
export function accessRefusal(
  policy: AccessPolicy,
  path: string,
  role: string,
): string | undefined {
  const method = methodName(path);
  const allowed = policy[method];
  if (!allowed) return `${method} is not open to any caller`;
  if ((allowed as readonly string[]).includes(role)) return undefined;
  const who = role ? `a "${role}" certificate` : 'a certificate without a role';
  return `${method} is refused to ${who}; it is for ${allowed.join(', ')} certificates only`;
}

/**
 * Checks every call's peer certificate against `policy` before its handler sees it: the mutual
 * TLS handshake proved the CA signed it, and its CN says which role it speaks for. A refused
 * call ends PERMISSION_DENIED and never reaches the service, so nothing stored changes.
 */
export function accessInterceptor(policy: AccessPolicy): grpc.ServerInterceptor {
  return (method, call) => {
    const cn = call.getAuthContext().sslPeerCertificate?.subject?.CN ?? '';
    // A subject with several CNs names no one role.
    const role = typeof cn === 'string' ? cn : '';
    const refusal = accessRefusal(policy, method.path, role);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        if (refusal === undefined) next();
        else call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: refusal });
      },
    });
  };
}

/** Server options with the access check added when the server speaks TLS. */
export function guardedServerOptions(
  base: grpc.ServerOptions,
  identity: TlsIdentity | undefined,
  policy: AccessPolicy,
): grpc.ServerOptions {
  if (!identity) return base;
  return { ...base, interceptors: [...(base.interceptors ?? []), accessInterceptor(policy)] };
}
