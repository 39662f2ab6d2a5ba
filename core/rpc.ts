import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { widenSessionWindows, widenStreamWindows } from './http2-server-window';
import type { ProtoGrpcType as PsProto } from '../proto/gen/ps';
import type { ProtoGrpcType as CoordinatorProto } from '../proto/gen/coordinator';

/** Walks up from this file to the repository's proto/ folder, so the same code runs from dist/ and from source. */
function protoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'proto', 'caviar', 'v1', 'ps.proto');
    if (fs.existsSync(candidate)) return path.join(dir, 'proto');
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find proto/caviar/v1/*.proto above ' + __dirname);
    dir = parent;
  }
}

// Must match the `gen` script's flags, so the runtime objects have the generated types' shape.
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

function load<T>(file: string): T {
  const root = protoRoot();
  const definition = protoLoader.loadSync(path.join(root, 'caviar', 'v1', file), {
    ...LOADER_OPTIONS,
    includeDirs: [root],
  });
  return grpc.loadPackageDefinition(definition) as unknown as T;
}

let psProto: PsProto | undefined;
let coordinatorProto: CoordinatorProto | undefined;

export function parameterServerProto(): PsProto['caviar']['v1'] {
  psProto ??= load<PsProto>('ps.proto');
  return psProto.caviar.v1;
}

export function coordinatorServiceProto(): CoordinatorProto['caviar']['v1'] {
  coordinatorProto ??= load<CoordinatorProto>('coordinator.proto');
  return coordinatorProto.caviar.v1;
}

/** Bytes per chunk of a tensor stream: far under grpc-js's 4 MB default receive limit. */
export const CHUNK_BYTES = 1 << 20;

/**
 * HTTP/2 receive window of every connection and stream, client and server side. The default,
 * 64 KB, makes a shard stop after every 64 KB of a pull until the worker's WINDOW_UPDATE comes
 * back (and a worker likewise during a push): a dozen round trips between two processes per
 * megabyte, each one a wait for the scheduler on a busy machine. 16 MB lets a pull or push of a
 * few megabytes stream in one go.
 */
export const FLOW_CONTROL_WINDOW_BYTES = 16 << 20;

/**
 * Channel options shared by every client: keepalive notices a peer that vanished without a FIN,
 * and the message limits stay at 8 MB since tensors travel in 1 MB chunks anyway.
 */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 8 << 20,
  'grpc.max_send_message_length': 8 << 20,
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
};

export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  'grpc.max_receive_message_length': 8 << 20,
  'grpc.max_send_message_length': 8 << 20,
};

/** A deadline `ms` from now, for CallOptions. */
export function deadlineIn(ms: number): Date {
  return new Date(Date.now() + ms);
}

let warnedWindows = false;

function warnNarrowWindows(): void {
  if (warnedWindows) return;
  warnedWindows = true;
  process.emitWarning(
    'this grpc-js version hides the server HTTP/2 window settings: receive windows stay at 64 KB, so pushes are slower',
  );
}

/**
 * Binds `server` on host:port (port 0 picks a free one) and returns the address it listens on.
 * Its sessions get FLOW_CONTROL_WINDOW_BYTES receive windows, as clients do: a push streams
 * without waiting for WINDOW_UPDATEs.
 */
export function bindServer(
  server: grpc.Server,
  host: string,
  port: number,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<string> {
  if (!widenStreamWindows(server, FLOW_CONTROL_WINDOW_BYTES)) warnNarrowWindows();
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, credentials, (err, bound) => {
      if (err) return reject(err);
      if (!widenSessionWindows(server, FLOW_CONTROL_WINDOW_BYTES)) warnNarrowWindows();
      resolve(`${host}:${bound}`);
    });
  });
}
