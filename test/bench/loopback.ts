/**
 * The loopback limit of the system path: the exchange a worker has with a shard per batch (send
 * `bytes`, receive `bytes`) over a bare TCP socket on 127.0.0.1 between two Node processes,
 * with length-prefixed messages and no copies beyond what the socket needs. The system_path
 * bench's gRPC round trips per second divided by this one is the share of the wire that caviar
 * gets. Prints one JSON line.
 *
 *   node dist/test/bench/loopback.js [--bytes 814120] [--seconds 3]
 */
import { fork } from 'node:child_process';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { round } from './stats';
import { answerCpuQueries, childCpuMs, cpuMs, replyFrom } from './bench-child';

interface Options {
  bytes: number;
  seconds: number;
  serve: boolean;
}

/**
 * Calls `onMessage` with the length of each whole length-prefixed message that arrives on
 * `socket`; the payloads themselves are dropped once counted.
 */
function onMessages(socket: net.Socket, onMessage: (bytes: number) => void): void {
  let header = Buffer.alloc(0);
  let remaining = -1;
  let length = 0;
  socket.on('data', (data: Buffer) => {
    let at = 0;
    while (at < data.length) {
      if (remaining < 0) {
        const need = 4 - header.length;
        header = Buffer.concat([header, data.subarray(at, at + need)]);
        at += Math.min(need, data.length - at);
        if (header.length < 4) return;
        length = remaining = header.readUInt32LE(0);
        header = Buffer.alloc(0);
      }
      const take = Math.min(remaining, data.length - at);
      remaining -= take;
      at += take;
      if (remaining === 0) {
        remaining = -1;
        onMessage(length);
      }
    }
  });
}

function framed(bytes: number): Buffer {
  const message = Buffer.alloc(4 + bytes, 1);
  message.writeUInt32LE(bytes, 0);
  return message;
}

/** Child mode: answers every message with one of the same size; reports its CPU when asked. */
function serve(): void {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const replies = new Map<number, Buffer>();
    onMessages(socket, (bytes) => {
      let reply = replies.get(bytes);
      if (!reply) replies.set(bytes, (reply = framed(bytes)));
      socket.write(reply);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address() as net.AddressInfo;
    process.send?.({ port: address.port });
  });
  answerCpuQueries();
  process.once('SIGINT', () => process.exit(0));
}

async function measure(o: Options): Promise<void> {
  const child = fork(__filename, ['--serve'], { stdio: 'inherit', execArgv: process.execArgv });
  const port = await replyFrom(child, (m: { port?: number }) => m.port);
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((r) => socket.once('connect', r));
  let answered: (() => void) | undefined;
  onMessages(socket, () => answered?.());
  const message = framed(o.bytes);
  const roundTrip = (): Promise<void> =>
    new Promise((resolve) => {
      answered = resolve;
      socket.write(message);
    });
  const runFor = async (seconds: number): Promise<number> => {
    const until = performance.now() + seconds * 1000;
    let trips = 0;
    while (performance.now() < until) {
      await roundTrip();
      trips += 1;
    }
    return trips;
  };
  await runFor(0.5);
  const [clientCpu0, serverCpu0] = [cpuMs(), await childCpuMs(child)];
  const started = performance.now();
  const trips = await runFor(o.seconds);
  const wall = (performance.now() - started) / 1000;
  const [clientCpu, serverCpu] = [cpuMs() - clientCpu0, (await childCpuMs(child)) - serverCpu0];
  socket.destroy();
  child.kill('SIGINT');
  process.stdout.write(
    JSON.stringify({
      bench: 'loopback',
      bytes: o.bytes,
      round_trips_per_s: round(trips / wall, 1),
      mb_per_s_each_way: round((trips * o.bytes) / 1e6 / wall, 1),
      cpu_ms_per_round_trip: {
        client: round(clientCpu / trips, 3),
        server: round(serverCpu / trips, 3),
      },
    }) + '\n',
  );
}

function main(): void {
  const o = new Command()
    .option('--bytes <n>', 'bytes each way per round trip (the MNIST MLP: 814120)', Number, 814120)
    .option('--seconds <s>', 'seconds measured', Number, 3)
    .option('--serve', 'internal: answer round trips', false)
    .parse()
    .opts<Options>();
  if (o.serve) serve();
  else void measure(o);
}

main();
