import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { LocalCluster } from '../../client/local-cluster';
import { CoordinatorClient } from '../../core/coordinator-client';
import { ParameterServerClient } from '../../core/ps-client';
import { mintDevelopmentCerts } from '../../core/security/dev-certs';
import { createEtcdClient } from '../../core/etcd-client';
import { loadTlsIdentity } from '../../core/security/tls-identity';
import { submit, assertExactlyOnce } from '../helpers/cluster';
import { runCaviar, tempDir, testOutputDir } from '../helpers/repo';

function mint(name: string): string {
  const dir = tempDir(name);
  mintDevelopmentCerts({ dir, hosts: [], days: 1, force: false });
  return dir;
}

/** The gRPC status a call ended with. */
async function refusal(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  assert.fail('the call was not refused');
}

test(
  'mutual TLS: a cluster trains over TLS with a secured etcd; plaintext, foreign and wrong-role callers are refused and change nothing',
  { timeout: 240_000 },
  async () => {
    const certs = mint('tls-cluster');
    const foreign = mint('tls-foreign');
    await using cluster = await new LocalCluster({
      workers: 1,
      shards: 1,
      backend: 'cpu',
      tls: loadTlsIdentity(certs, 'client'),
      logDir: testOutputDir('mutual-tls'),
    }).start();
    const address = cluster.coordinator;
    const shardAddress = cluster.processes.find((p) => p.role === 'ps')?.address ?? '';
    const client = new CoordinatorClient(address, { tls: loadTlsIdentity(certs, 'client') });
    const plaintext = new CoordinatorClient(address, { deadlineMs: 5_000 });
    const stranger = new CoordinatorClient(address, {
      deadlineMs: 5_000,
      tls: loadTlsIdentity(foreign, 'client'),
    });
    const asWorker = new CoordinatorClient(address, { tls: loadTlsIdentity(certs, 'worker') });
    const shardAsWorker = new ParameterServerClient(shardAddress, {
      tls: loadTlsIdentity(certs, 'worker'),
    });
    const shardAsCoordinator = new ParameterServerClient(shardAddress, {
      tls: loadTlsIdentity(certs, 'coordinator'),
    });
    try {
      const trial = await submit(client, {
        name: 'over-tls',
        dataset: 'synthetic:spirals',
        model: 'mlp:16',
        batch: 32,
        epochs: 3,
        optimizer: { kind: 'adam', lr: 0.01 },
      });
      const final = await trial.done;
      assert.equal(final.status, 'completed', final.error);
      assertExactlyOnce(final);
      const roles = (await client.clusterInfo()).members.map((m) => m.role).sort();
      assert.deepEqual(roles, ['coordinator', 'ps', 'worker'], 'every role registered in etcd');

      assert.match(cluster.etcdUrl ?? '', /^https:\/\/127\.0\.0\.1:/, 'etcd serves TLS');
      const etcdUrl = cluster.etcdUrl ?? '';
      const certOnly = createEtcdClient([etcdUrl], { tls: loadTlsIdentity(certs, 'worker') });
      const wrongPassword = createEtcdClient([etcdUrl], {
        tls: loadTlsIdentity(certs, 'worker'),
        auth: { username: 'caviar', password: 'guessed' },
      });
      const plainEtcd = createEtcdClient([etcdUrl.replace('https:', 'http:')], {}, 2_000);
      try {
        await assert.rejects(certOnly.getAll().prefix('/caviar/').keys(), /permission denied/);
        await assert.rejects(
          wrongPassword.getAll().prefix('/caviar/').keys(),
          /authentication failed/,
        );
        await assert.rejects(plainEtcd.getAll().prefix('/caviar/').keys());
      } finally {
        for (const etcd of [certOnly, wrongPassword, plainEtcd]) etcd.close();
      }

      const plain = await refusal(plaintext.listTrials());
      assert.equal(plain.code, grpc.status.UNAVAILABLE);
      assert.match(plain.details, /plaintext connection .*--tls DIR/);
      const unknown = await refusal(stranger.listTrials());
      assert.equal(unknown.code, grpc.status.UNAUTHENTICATED);
      assert.match(unknown.details, /mutual TLS with .* failed: .*certificate/);

      const running = await submit(client, {
        name: 'long',
        dataset: 'synthetic:spirals',
        model: 'mlp:16',
        batch: 16,
        epochs: 500,
        optimizer: { kind: 'adam', lr: 0.01 },
      });
      await running.until((s) => s.history.length >= 1);

      const submitted = await refusal(
        asWorker.submitTrial({ name: 'intruder', dataset: 'synthetic:spirals', model: 'mlp:4' }),
      );
      assert.equal(submitted.code, grpc.status.PERMISSION_DENIED);
      assert.match(submitted.details, /SubmitTrial is refused to a "worker" certificate/);
      const stopped = await refusal(asWorker.stopTrial('long'));
      assert.equal(stopped.code, grpc.status.PERMISSION_DENIED);
      const dropped = await refusal(shardAsWorker.drop('long'));
      assert.equal(dropped.code, grpc.status.PERMISSION_DENIED);
      assert.match(dropped.details, /Drop is refused to a "worker" certificate/);

      const trials = await client.listTrials();
      assert.deepEqual(
        trials.map((t) => [t.trial, t.status]).sort(),
        [
          ['long', 'running'],
          ['over-tls', 'completed'],
        ],
        'no refused call added or stopped a trial',
      );
      assert.equal((await asWorker.getTrial('long')).status, 'running', 'reads stay open');
      const before = await shardAsCoordinator.stats('long');
      const later = await running.until((s) => s.history.length >= 3);
      assert.equal(later.status, 'running');
      const after = await shardAsCoordinator.stats('long');
      assert.ok(
        after.version > before.version,
        'the shard kept training the trial the refused Drop named',
      );

      const cli = await runCaviar(['trials', '--coordinator', address, '--json'], {
        timeoutMs: 30_000,
        env: { CAVIAR_TLS_DIR: certs },
      });
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /over-tls/);
      const cliPlain = await runCaviar(['trials', '--coordinator', address], {
        timeoutMs: 30_000,
      });
      assert.equal(cliPlain.code, 1);
      assert.match(cliPlain.stderr, /^caviar: .* dropped a plaintext connection .*--tls DIR/);
      assert.doesNotMatch(cliPlain.stderr + cli.stderr, /DEP0123|DeprecationWarning/);
      const cliMissing = await runCaviar([
        'trials',
        '--coordinator',
        address,
        '--tls',
        foreign + '-none',
      ]);
      assert.equal(cliMissing.code, 2);
      assert.match(cliMissing.stderr, /ca\.pem is missing/);
      await client.stopTrial('long');
      assert.equal((await running.done).status, 'stopped');
    } finally {
      for (const c of [client, plaintext, stranger, asWorker]) c.close();
      shardAsWorker.close();
      shardAsCoordinator.close();
    }
  },
);
