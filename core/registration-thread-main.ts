/**
 * The thread side of ThreadedRegistration (registration-thread.ts): an etcd client and a
 * RegistrationKeeper of its own, so the lease's keep-alives go out however long the role's main
 * thread is busy. The current token lives in the shared array (0: none).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EtcdMembership } from './etcd-membership';
import { errorMessage } from './errors';
import { createLogger } from './log';
import { RegistrationKeeper } from './registration-keeper';
import type { RegistrationThreadData } from './registration-thread';

const data = workerData as RegistrationThreadData;
const port = parentPort!;
const log = createLogger(data.logName, data.logBindings);
const membership = new EtcdMembership({
  endpoints: data.endpoints,
  security: data.security,
  cluster: data.cluster,
  ttlSeconds: data.ttlSeconds,
});
const tokens = new BigInt64Array(data.token);
const keeper = new RegistrationKeeper(membership, data.info, log, (token) =>
  Atomics.store(tokens, 0, token ? BigInt(token) : 0n),
);

keeper.start().then(
  () => port.postMessage({ type: 'ready' }),
  (err: unknown) => port.postMessage({ type: 'error', message: errorMessage(err) }),
);

port.on('message', (message: unknown) => {
  if (message !== 'close') return;
  void (async () => {
    await keeper.close();
    await membership.close();
    port.postMessage({ type: 'closed' });
  })();
});
