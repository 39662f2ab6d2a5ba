import type * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

/**
 * The two grpc-js Server fields this module reaches into. grpc-js (1.14) has a client option for
 * HTTP/2 receive windows (`grpc-node.flow_control_window`) but none for servers, so a shard
 * receiving an 814 KB push stops after every 64 KB until its WINDOW_UPDATE has reached the worker
 * and the worker has been scheduled again: a dozen process round trips per push. Both fields are
 * private; the functions below check their shape at run time and leave the server alone (the
 * caller says so) when a grpc-js upgrade has changed them.
 */
interface ServerInternals {
  commonServerOptions?: http2.ServerOptions;
  http2Servers?: Map<http2.Http2Server, unknown>;
}

/**
 * Before `bindAsync`: every HTTP/2 session the server accepts will advertise a per-stream receive
 * window of `bytes`. Returns false when grpc-js no longer has the field.
 */
export function widenStreamWindows(server: grpc.Server, bytes: number): boolean {
  const internals = server as unknown as ServerInternals;
  const options = internals.commonServerOptions;
  if (typeof options !== 'object' || options === null) return false;
  options.settings = { ...options.settings, initialWindowSize: bytes };
  return true;
}

/**
 * After `bindAsync`: raises each new session's connection-level receive window to `bytes`
 * (HTTP/2 starts every connection at 64 KB whatever the settings say). Returns false when
 * grpc-js no longer has the field.
 */
export function widenSessionWindows(server: grpc.Server, bytes: number): boolean {
  const servers = (server as unknown as ServerInternals).http2Servers;
  if (!(servers instanceof Map)) return false;
  for (const http2Server of servers.keys()) {
    http2Server.on('session', (session: http2.ServerHttp2Session) => {
      // A session already torn down (a client that connected and vanished) has no window to set.
      if (!session.destroyed) session.setLocalWindowSize(bytes);
    });
  }
  return true;
}
