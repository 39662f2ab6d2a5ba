import * as grpc from '@grpc/grpc-js';
import { SERVER_OPTIONS, bindServer, parameterServerProto } from '../core/rpc';
import { serverCredentials } from '../core/security/tls-identity';
import { SHARD_ACCESS, guardedServerOptions } from '../core/security/rpc-access';
import { resolveShardOptions, type ResolvedShardOptions, type ShardOptions } from './shard-options';
import { ShardCore } from './shard-core';
import { ShardReplies } from './rpc-reply';
import { chunkHandlers } from './chunk-rpc';
import { SegmentTransport } from './segment-rpc';
import { ChunkSessions } from './chunk-session-rpc';
import { adminHandlers } from './admin-rpc';
import type { ShardSnapshot } from './shard-observer';

export type { ShardOptions } from './shard-options';

/**
 * A parameter-server shard as a gRPC server: the shard core, and its transports (chunk streams,
 * same-host segments) and admin calls as handlers. Use with `await using`, or call `close`.
 */
export class ParameterServerShard {
  readonly options: ResolvedShardOptions;
  private readonly core: ShardCore;
  private readonly segments: SegmentTransport;
  private readonly chunkSessions: ChunkSessions;
  private readonly replies: ShardReplies;
  private server: grpc.Server | undefined;
  private closing = false;

  constructor(options: ShardOptions = {}) {
    this.options = resolveShardOptions(options);
    this.core = new ShardCore(this.options);
    this.replies = new ShardReplies(this.options.logger);
    this.segments = new SegmentTransport(this.core, this.replies);
    this.chunkSessions = new ChunkSessions(this.core, this.replies);
  }

  /** Restores the newest valid checkpoint (if any), starts serving, returns "host:port". */
  async start(): Promise<string> {
    if (this.server || this.closing)
      throw new Error(`shard ${this.options.id} was already started`);
    await this.core.restore();
    const { tls } = this.options;
    const server = new grpc.Server(guardedServerOptions(SERVER_OPTIONS, tls, SHARD_ACCESS));
    server.addService(parameterServerProto().ParameterServer.service, {
      ...adminHandlers(this.core, this.replies),
      ...chunkHandlers(this.core, this.replies),
      ...this.segments.handlers(),
      ...this.chunkSessions.handlers(),
    });
    this.server = server;
    return bindServer(server, this.options.host, this.options.port, serverCredentials(tls));
  }

  /** Stops serving: waiting pulls answer UNAVAILABLE, other calls get closeGraceMs to finish. */
  async close(): Promise<void> {
    const server = this.server;
    this.closing = true;
    this.server = undefined;
    const checkpointed = this.core.close();
    this.segments.endSessions();
    this.chunkSessions.endSessions();
    await checkpointed;
    this.segments.detach();
    if (!server) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, this.options.closeGraceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.core.forget();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** What this shard holds, for its metrics (read at scrape time, off the push/pull paths). */
  metricsSnapshot(): ShardSnapshot {
    return this.core.metricsSnapshot();
  }
}
