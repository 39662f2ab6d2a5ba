import { Etcd3 } from 'etcd3';

/** An etcd client whose unary calls all have a deadline (streams have none: they are long-lived). */
export function createEtcdClient(endpoints: readonly string[], callTimeoutMs = 5_000): Etcd3 {
  if (endpoints.length === 0) throw new Error('etcd needs at least one endpoint');
  return new Etcd3({
    hosts: [...endpoints],
    dialTimeout: callTimeoutMs,
    defaultCallOptions: (context) =>
      context.isStream ? {} : { deadline: Date.now() + callTimeoutMs },
  });
}
