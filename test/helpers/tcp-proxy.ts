import * as net from 'node:net';

/**
 * A userspace TCP proxy on 127.0.0.1 in front of one address, for the network faults of
 * RELIABILITY.md: a slow link (every chunk held back `delayMs` in each direction) and a silent
 * peer (bytes dropped both ways while every socket stays open, as a dead NAT or a cable pulled
 * without a FIN would).
 */
export class TcpProxy {
  /** Held back per chunk, each direction. */
  delayMs = 0;
  private silent = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((client) => this.connect(client));

  constructor(private readonly target: string) {}

  /** Listens on a free port; resolves to HOST:PORT. */
  start(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        const { port } = this.server.address() as net.AddressInfo;
        resolve(`127.0.0.1:${port}`);
      });
    });
  }

  /** Drops every byte from now on, both ways, without closing anything. */
  silence(): void {
    this.silent = true;
  }

  /** Forwards again, after closing the connections that went silent (their streams lost bytes). */
  restore(): void {
    for (const s of this.sockets) s.destroy();
    this.silent = false;
  }

  /** Connections opened through the proxy so far and still open. */
  get connections(): number {
    return this.sockets.size / 2;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private connect(client: net.Socket): void {
    const at = this.target.lastIndexOf(':');
    const upstream = net.connect(Number(this.target.slice(at + 1)), this.target.slice(0, at));
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => this.sockets.delete(s));
    }
    this.relay(client, upstream);
    this.relay(upstream, client);
  }

  private relay(from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (this.silent) return;
      if (this.delayMs > 0) setTimeout(() => to.write(chunk), this.delayMs);
      else to.write(chunk);
    });
    const end = (): void => void to.destroy();
    from.on('close', end);
    from.on('error', end);
  }
}
