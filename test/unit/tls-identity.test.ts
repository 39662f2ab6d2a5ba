import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import * as https from 'node:https';
import * as grpc from '@grpc/grpc-js';
import { metricsServerFrom } from '../../core/metrics-options';
import { mintDevelopmentCerts } from '../../core/security/dev-certs';
import { loadTlsIdentity, TlsConfigError, TLS_ROLES } from '../../core/security/tls-identity';
import { accessRefusal, COORDINATOR_ACCESS, SHARD_ACCESS } from '../../core/security/rpc-access';
import { explainTlsFailure } from '../../core/security/tls-hints';
import { parameterServerProto, coordinatorServiceProto } from '../../core/rpc';
import { tempDir } from '../helpers/repo';
import { etcdSecurity, ETCD_PASSWORD_ENV } from '../../core/membership-options';

// One minted set shared by the tests: RSA key generation takes most of a second per key.
const dirA = tempDir('tls-a');
mintDevelopmentCerts({ dir: dirA, hosts: ['ps-0.caviar-ps', '10.1.2.3'], days: 30, force: false });

test('minted certificates: CN is the role, SANs name every host, keys are private', () => {
  for (const role of [...TLS_ROLES, 'etcd']) {
    const cert = new X509Certificate(fs.readFileSync(path.join(dirA, `${role}.pem`)));
    assert.match(cert.subject, new RegExp(`^CN=${role}$`, 'm'));
    assert.ok(cert.checkIssued(new X509Certificate(fs.readFileSync(path.join(dirA, 'ca.pem')))));
    for (const name of [
      'DNS:localhost',
      'IP Address:127.0.0.1',
      'DNS:ps-0.caviar-ps',
      'IP Address:10.1.2.3',
    ])
      assert.ok(
        cert.subjectAltName?.includes(name),
        `${role} SANs lack ${name}: ${cert.subjectAltName}`,
      );
    const mode = fs.statSync(path.join(dirA, `${role}-key.pem`)).mode & 0o777;
    assert.equal(mode, 0o600, `${role}-key.pem is readable by others`);
  }
  assert.throws(
    () => mintDevelopmentCerts({ dir: dirA, hosts: [], days: 1, force: false }),
    /exists; pass --force/,
    'an existing set is not overwritten',
  );
});

test('loadTlsIdentity names the file and what is wrong with it', () => {
  const identity = loadTlsIdentity(dirA, 'worker');
  assert.equal(identity.role, 'worker');
  const broken = tempDir('tls-broken');
  assert.throws(
    () => loadTlsIdentity(broken, 'ps'),
    (err: unknown) => {
      assert.ok(err instanceof TlsConfigError);
      assert.match(err.message, /ca\.pem is missing \(caviar certs DIR mints a set\)/);
      return true;
    },
  );
  fs.copyFileSync(path.join(dirA, 'ca.pem'), path.join(broken, 'ca.pem'));
  // A worker's certificate filed as the shard's: the role check catches it.
  fs.copyFileSync(path.join(dirA, 'worker.pem'), path.join(broken, 'ps.pem'));
  fs.copyFileSync(path.join(dirA, 'worker-key.pem'), path.join(broken, 'ps-key.pem'));
  assert.throws(() => loadTlsIdentity(broken, 'ps'), /ps\.pem is for "worker", not the ps role/);
  fs.writeFileSync(path.join(broken, 'ps.pem'), 'not a certificate');
  assert.throws(() => loadTlsIdentity(broken, 'ps'), /ps\.pem is not PEM/);
  // Signed by another CA.
  const dirB = tempDir('tls-b');
  mintDevelopmentCerts({ dir: dirB, hosts: [], days: 1, force: false });
  fs.copyFileSync(path.join(dirB, 'ps.pem'), path.join(broken, 'ps.pem'));
  assert.throws(() => loadTlsIdentity(broken, 'ps'), /ps\.pem is not signed by .*ca\.pem/);
});

test('access policies cover every RPC of both services and no more', () => {
  const shardMethods = Object.keys(parameterServerProto().ParameterServer.service).sort();
  assert.deepEqual(Object.keys(SHARD_ACCESS).sort(), shardMethods);
  const coordinatorMethods = Object.keys(coordinatorServiceProto().Coordinator.service).sort();
  assert.deepEqual(Object.keys(COORDINATOR_ACCESS).sort(), coordinatorMethods);
});

test('access policies: only workers push, only the coordinator inits and drops, only the CLI submits', () => {
  const shard = (method: string, role: string) =>
    accessRefusal(SHARD_ACCESS, `/caviar.v1.ParameterServer/${method}`, role);
  const coordinator = (method: string, role: string) =>
    accessRefusal(COORDINATOR_ACCESS, `/caviar.v1.Coordinator/${method}`, role);
  for (const push of ['Push', 'PushPull', 'SegmentPush', 'SegmentPushPull', 'SegmentSession']) {
    assert.equal(shard(push, 'worker'), undefined);
    for (const other of ['coordinator', 'client', 'ps', ''])
      assert.match(shard(push, other) ?? '', new RegExp(`${push} is refused`));
  }
  for (const admin of ['Init', 'Drop', 'SetLearningRate']) {
    assert.equal(shard(admin, 'coordinator'), undefined);
    assert.match(shard(admin, 'worker') ?? '', /is for coordinator certificates only/);
  }
  for (const steer of ['SubmitTrial', 'StopTrial', 'TuneTrial', 'SubmitSweep']) {
    assert.equal(coordinator(steer, 'client'), undefined);
    assert.match(coordinator(steer, 'worker') ?? '', /refused to a "worker" certificate/);
  }
  assert.equal(coordinator('AcquireWork', 'worker'), undefined);
  assert.ok(coordinator('AcquireWork', 'client'), 'a client cannot take work');
  assert.equal(coordinator('ListTrials', 'worker'), undefined, 'reads are open to every role');
  assert.match(coordinator('NoSuchMethod', 'client') ?? '', /not open to any caller/);
});

test('a failed TLS handshake is explained as TLS, a server that is down is not', () => {
  const unavailable = (last: string): grpc.ServiceError =>
    Object.assign(new Error(''), {
      code: grpc.status.UNAVAILABLE,
      details: `No connection established. Last error: ${last}. Resolution note: `,
      metadata: new grpc.Metadata(),
    });
  const plain = explainTlsFailure(
    unavailable('Failed to connect (2026-01-01T00:00:00.000Z)'),
    'h:1',
    false,
  );
  assert.equal(plain.code, grpc.status.UNAVAILABLE);
  assert.match(
    plain.details,
    /^h:1 dropped a plaintext connection \(Failed to connect\): .*--tls DIR/,
  );
  const ca = explainTlsFailure(unavailable('Error: certificate signature failure'), 'h:1', true);
  assert.equal(ca.code, grpc.status.UNAUTHENTICATED);
  assert.match(ca.details, /mutual TLS with h:1 failed: certificate signature failure/);
  const plainServer = explainTlsFailure(
    unavailable(
      'Error: 80:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:x.c:350:\n',
    ),
    'h:1',
    true,
  );
  assert.match(plainServer.details, /answered a TLS handshake in plaintext/);
  const down = unavailable('Error: connect ECONNREFUSED 127.0.0.1:1');
  assert.equal(explainTlsFailure(down, 'h:1', true), down);
  assert.equal(explainTlsFailure(down, 'h:1', false), down);
  const denied = Object.assign(down, { code: grpc.status.PERMISSION_DENIED });
  assert.equal(explainTlsFailure(denied, 'h:1', false), denied);
});

test('etcd security from the role flags: its certificate for https, a user only with a password', () => {
  const tls = loadTlsIdentity(dirA, 'ps');
  const flags = { cluster: 'c', memberTtl: 3, tls };
  assert.deepEqual(etcdSecurity({ ...flags, etcd: 'http://127.0.0.1:2379' }), {});
  const secured = etcdSecurity({ ...flags, etcd: 'https://etcd-0:2379,https://etcd-1:2379' });
  assert.deepEqual(secured.tls?.cert, tls.cert);
  assert.equal(secured.auth, undefined);
  const saved = process.env[ETCD_PASSWORD_ENV];
  delete process.env[ETCD_PASSWORD_ENV];
  try {
    assert.throws(
      () => etcdSecurity({ ...flags, etcd: 'https://e:2379', etcdUser: 'caviar' }),
      /--etcd-user caviar needs a password: set CAVIAR_ETCD_PASSWORD or pass --etcd-password-file/,
    );
    const file = path.join(tempDir('etcd-password'), 'password');
    fs.writeFileSync(file, 's3cret\n');
    const auth = etcdSecurity({
      ...flags,
      etcd: 'https://e:2379',
      etcdUser: 'caviar',
      etcdPasswordFile: file,
    });
    assert.deepEqual(auth.auth, { username: 'caviar', password: 's3cret' });
    process.env[ETCD_PASSWORD_ENV] = 'from-env';
    assert.equal(
      etcdSecurity({ ...flags, etcd: 'https://e:2379', etcdUser: 'caviar' }).auth?.password,
      'from-env',
    );
  } finally {
    if (saved === undefined) delete process.env[ETCD_PASSWORD_ENV];
    else process.env[ETCD_PASSWORD_ENV] = saved;
  }
});

test('/metrics over HTTPS answers clients the CA signed and no others', async () => {
  const server = metricsServerFrom({
    metricsHost: '127.0.0.1',
    metricsPort: 0,
    metricsTls: true,
    tls: loadTlsIdentity(dirA, 'ps'),
  });
  const base = await server.start();
  assert.match(base, /^https:\/\/127\.0\.0\.1:\d+$/);
  const scrape = (identity?: { ca: Buffer; cert: Buffer; key: Buffer }) =>
    new Promise<number>((resolve, reject) => {
      const req = https.get(
        `${base}/metrics`,
        { ...identity, ca: loadTlsIdentity(dirA, 'client').ca },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
    });
  try {
    assert.equal(await scrape(loadTlsIdentity(dirA, 'client')), 200);
    await assert.rejects(scrape(), 'a scraper without a certificate is refused');
  } finally {
    await server.close();
  }
  assert.throws(
    () => metricsServerFrom({ metricsHost: '127.0.0.1', metricsPort: 0, metricsTls: true }),
    /--metrics-tls needs --tls DIR/,
  );
});
