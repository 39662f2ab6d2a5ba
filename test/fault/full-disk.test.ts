import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { tempDir } from '../helpers/repo';

// A real full disk: a 512 KB tmpfs in a private mount namespace (`unshare -rm`, no root needed).
test('a full disk fails the checkpoint with a clear error and keeps the previous one intact', () => {
  const mountPoint = tempDir('full-disk');
  const fixture = path.join(__dirname, 'fixtures', 'full-disk-store.js');
  const script = `mount -t tmpfs -o size=512k tmpfs '${mountPoint}' && exec '${process.execPath}' '${fixture}' '${mountPoint}'`;
  const run = spawnSync('unshare', ['-rm', 'sh', '-c', script], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout.trim()) as {
    small: number;
    error: string;
    newest: { seq: number; value: string };
    files: string[];
  };
  assert.equal(result.small, 1);
  assert.match(
    result.error,
    /checkpoint 2 not written \(the disk is full\); the previous checkpoint is kept/,
  );
  assert.deepEqual(result.newest, { seq: 1, value: 't1000' });
  assert.deepEqual(
    result.files,
    ['ckpt-00000001.bin', 'ckpt-00000001.manifest.json'],
    'no partial files left behind',
  );
});
