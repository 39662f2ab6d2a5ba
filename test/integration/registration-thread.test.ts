import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { EtcdServer } from '../../core/etcd-server';
import { EtcdMembership } from '../../core/etcd-membership';
import { RegistrationKeeper } from '../../core/registration-keeper';
import { ThreadedRegistration } from '../../core/registration-thread';
import { createLogger } from '../../core/log';
import { tempDir } from '../helpers/repo';
import { sleep } from '../helpers/cluster';

/** Keeps this thread busy, as Adam over a large slice or a checkpoint encode would. */
function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // nothing: the event loop cannot run
  }
}

const TTL_S = 1;
const BLOCK_MS = 4_000;

test(
  'a registration kept from its own thread survives a main thread blocked for 4 TTLs; one kept on the main thread loses its lease',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir('registration-thread');
    const etcd = new EtcdServer({ dataDir: path.join(dir, 'etcd') });
    const url = await etcd.start();
    t.after(() => etcd.stop());
    const cluster = `thread-${process.pid}`;
    const membership = new EtcdMembership({ endpoints: [url], cluster, ttlSeconds: TTL_S });
    t.after(() => membership.close());
    const threaded = new ThreadedRegistration({
      endpoints: [url],
      cluster,
      ttlSeconds: TTL_S,
      info: { role: 'worker', id: 'threaded', pid: process.pid },
      logName: 'worker',
      logBindings: { id: 'threaded' },
    });
    const plain = new RegistrationKeeper(
      membership,
      { role: 'worker', id: 'plain', pid: process.pid },
      createLogger('worker', { id: 'plain' }),
    );
    await threaded.start();
    await plain.start();
    t.after(() => Promise.all([threaded.close(), plain.close()]));
    const tokens = { threaded: threaded.token, plain: plain.token };
    assert.ok(tokens.threaded && tokens.plain);

    blockFor(BLOCK_MS);
    // Read before this thread's own etcd calls can run: what etcd holds right now.
    const members = await membership.list('worker');
    const token = (id: string): string | undefined => members.find((m) => m.id === id)?.token;
    assert.equal(threaded.token, tokens.threaded, 'the threaded lease is the one it had');
    assert.equal(token('threaded'), tokens.threaded, 'and etcd still holds it');
    assert.notEqual(token('plain'), tokens.plain, "the main thread's lease ended in etcd");

    // Closing revokes the lease: the member leaves at once.
    await threaded.close();
    await sleep(100);
    assert.ok(!(await membership.list('worker')).some((m) => m.id === 'threaded'));
  },
);
