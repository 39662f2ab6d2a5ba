import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { ParameterServerClient as GrpcParameterServerClient } from '../../proto/gen/caviar/v1/ParameterServer';
import type { PushReply__Output } from '../../proto/gen/caviar/v1/PushReply';
import { SameHostTransport } from '../../core/shard-transport/same-host-transport';
import type {
  PullOptions,
  ShardTransport,
  TransferOptions,
} from '../../core/shard-transport/shard-transport';

/** A transport that answers every call at once and records the options it was given. */
class RecordingTransport implements ShardTransport {
  readonly description = 'recording';
  readonly calls: Array<{ kind: string; options: TransferOptions | undefined }> = [];
  closed = false;

  prepare(): Promise<void> {
    return Promise.resolve();
  }

  readonly pull: ShardTransport['pull'] = (_trial, _slices, _into, options) => {
    this.calls.push({ kind: 'pull', options });
    return Promise.resolve({ version: 7, fromSnapshot: false });
  };

  readonly pushPull: ShardTransport['pushPull'] = (_header, _slices, _grads, _into, options) => {
    this.calls.push({ kind: 'pushPull', options });
    return Promise.resolve({ version: 8 } as PushReply__Output);
  };

  readonly push: ShardTransport['push'] = (_header, _slices, _grads, options) => {
    this.calls.push({ kind: 'push', options });
    return Promise.resolve({ version: 9 } as PushReply__Output);
  };

  close(): void {
    this.closed = true;
  }
}

describe('SameHostTransport', () => {
  it('hands each call to its fallback, with the deadline it set, where no segment can be made', async () => {
    // No gRPC call is made: the segment cannot even be created, so the stub is never touched.
    const client = {} as GrpcParameterServerClient;
    const dir = path.join(os.tmpdir(), `caviar-missing-${process.pid}`, 'nested');
    const fallback = new RecordingTransport();
    const transport = new SameHostTransport(
      { client, address: 'shard:1', deadlineMs: 1_000 },
      dir,
      fallback,
    );
    await transport.prepare();
    assert.match(transport.description, /^chunks \(cannot create a segment in /);

    const slices = [{ name: 'w', start: 0, length: 2, shard: 0 }];
    const values = new Map([['w', new Float32Array(2)]]);
    const before = Date.now();
    const pulled = await transport.pull('t', slices, values, { waitMs: 500, minVersion: 3 });
    assert.equal(pulled.version, 7);
    const header = { trial: 't', epoch: 1, batch: 0 };
    assert.equal((await transport.pushPull(header, slices, values, values)).version, 8);
    assert.equal((await transport.push(header, slices, values)).version, 9);

    assert.deepEqual(
      fallback.calls.map((c) => c.kind),
      ['pull', 'pushPull', 'push'],
    );
    const [pull, pushPull] = fallback.calls;
    assert.equal((pull.options as PullOptions).minVersion, 3, 'the pull options pass on');
    const pullDeadline = pull.options?.deadline?.getTime() ?? 0;
    assert.ok(pullDeadline >= before + 1_500 && pullDeadline <= Date.now() + 1_500);
    const pushDeadline = pushPull.options?.deadline?.getTime() ?? 0;
    assert.ok(pushDeadline >= before + 1_000 && pushDeadline <= Date.now() + 1_000);

    transport.close();
    assert.ok(fallback.closed);
  });
});
