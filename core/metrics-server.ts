import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * Extra HTTP routes served beside /metrics (the coordinator's dashboard). Resolves true when it
 * answered the request, false to let the server answer 404.
 */
export type HttpRoutes = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
) => boolean | Promise<boolean>;

export interface MetricsServerOptions {
  /**
   * Interface to listen on. Defaults to 127.0.0.1: metrics name trials and show load, so serving
   * them beyond this machine is a choice the operator makes (0.0.0.0 in a pod).
   */
  host?: string;
  /** TCP port; 0 picks a free one. Defaults to 0. */
  port?: number;
  /** Routes tried for anything but /metrics. Defaults to none. */
  routes?: HttpRoutes;
  /**
   * Serve HTTPS with this certificate and take only clients that show one the same CA signed
   * (a scraper's, a browser's). Defaults to plain HTTP.
   */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
}

/** The address a client should use: a wildcard bind is reachable at least on loopback. */
function reachableHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * A process's Prometheus endpoint: its own Registry (never prom-client's global one, so two
 * servers in one test process do not mix their series), the default process metrics, and an
 * HTTP server answering GET /metrics.
 */
export class MetricsServer {
  readonly registry = new Registry();
  private readonly server: http.Server;
  private base = '';

  constructor(private readonly options: MetricsServerOptions = {}) {
    collectDefaultMetrics({ register: this.registry });
    const listener: http.RequestListener = (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(err instanceof Error ? err.message : String(err));
      });
    };
    const tls = options.tls;
    this.server = tls
      ? https.createServer({ ...tls, requestCert: true, rejectUnauthorized: true }, listener)
      : http.createServer(listener);
  }

  /** Starts listening; resolves to the base URL, e.g. "http://127.0.0.1:9464". */
  async start(): Promise<string> {
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const { port } = this.server.address() as AddressInfo;
    const scheme = this.options.tls ? 'https' : 'http';
    this.base = `${scheme}://${reachableHost(host)}:${port}`;
    return this.base;
  }

  /** The base URL once started ("" before). */
  get url(): string {
    return this.base;
  }

  /** Where Prometheus scrapes this process ("" before start). */
  get metricsUrl(): string {
    return this.base && `${this.base}/metrics`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = await this.registry.metrics();
      res.writeHead(200, { 'content-type': this.registry.contentType });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (this.options.routes && (await this.options.routes(req, res, url))) return;
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end(`no route ${url.pathname}\n`);
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Keep-alive scrapers (Prometheus, browsers) would otherwise hold close() open.
    this.server.closeAllConnections();
    await closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
