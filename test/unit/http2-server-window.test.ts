import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { bindServer, FLOW_CONTROL_WINDOW_BYTES, SERVER_OPTIONS } from '../../core/rpc';

/** Polls `read` until it returns true or `ms` pass. */
async function eventually(read: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!read()) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

describe('server HTTP/2 receive windows', () => {
  it('a bound server advertises wide stream and connection windows to its clients', async () => {
    const server = new grpc.Server(SERVER_OPTIONS);
    const address = await bindServer(server, '127.0.0.1', 0);
    // A plain HTTP/2 client sees what the server advertised, without grpc-js internals.
    const client = http2.connect(`http://${address}`);
    try {
      await once(client, 'remoteSettings');
      assert.equal(client.remoteSettings.initialWindowSize, FLOW_CONTROL_WINDOW_BYTES);
      // The connection-level window comes as a WINDOW_UPDATE right after the settings.
      const widened = await eventually(
        () => (client.state.remoteWindowSize ?? 0) >= FLOW_CONTROL_WINDOW_BYTES,
        2_000,
      );
      assert.ok(widened, `connection window stayed at ${client.state.remoteWindowSize} bytes`);
    } finally {
      client.destroy();
      server.forceShutdown();
    }
  });
});
