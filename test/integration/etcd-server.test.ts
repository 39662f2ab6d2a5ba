import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdServer, etcdAvailable } from '../../core/etcd-server';
import { tempDir } from '../helpers/repo';

const skip = etcdAvailable() ? false : 'etcd is not installed (npm test installs it)';

/** An etcd binary that fails its first `failures` starts with `message`, then runs etcd. */
function flakyEtcd(
  dir: string,
  failures: number,
  message: string,
): { binary: string; runs: () => number } {
  const counter = path.join(dir, 'runs');
  const binary = path.join(dir, 'etcd-flaky');
  fs.writeFileSync(
    binary,
    [
      '#!/bin/sh',
      `echo run >> '${counter}'`,
      `if [ "$(wc -l < '${counter}')" -le ${failures} ]; then echo '${message}'; exit 1; fi`,
      'exec etcd "$@"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const runs = () =>
    fs.existsSync(counter) ? fs.readFileSync(counter, 'utf8').split('\n').length - 1 : 0;
  return { binary, runs };
}

test(
  'a test etcd that loses the race for a port it picked starts again on new ports',
  { skip, timeout: 60_000 },
  async () => {
    const dir = tempDir('etcd-port-race');
    const fake = flakyEtcd(
      dir,
      1,
      'etcdmain: listen tcp 127.0.0.1:1: bind: address already in use',
    );
    const etcd = new EtcdServer({ dataDir: path.join(dir, 'etcd'), binary: fake.binary });
    try {
      const url = await etcd.start();
      assert.equal(fake.runs(), 2, 'one lost race, one start');
      assert.equal((await fetch(`${url}/health`)).status, 200);
    } finally {
      await etcd.stop();
    }
  },
);

test('any other failure to start is reported at once', { skip, timeout: 60_000 }, async () => {
  const dir = tempDir('etcd-bad-start');
  const fake = flakyEtcd(dir, 5, 'etcdmain: member has already been bootstrapped');
  const etcd = new EtcdServer({ dataDir: path.join(dir, 'etcd'), binary: fake.binary });
  await assert.rejects(etcd.start(), /etcd exited with code 1/);
  assert.equal(fake.runs(), 1);
});
