import { Command, InvalidArgumentError } from 'commander';
import { MetricsServer, type HttpRoutes } from './metrics-server';
import type { TlsFlags } from './security/tls-options';

/** The metrics flags every role process takes. */
export interface MetricsFlags extends TlsFlags {
  metricsHost: string;
  metricsPort: number;
  metricsTls?: boolean;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65_535)
    throw new InvalidArgumentError('must be an integer 0..65535');
  return port;
}

export function addMetricsOptions(command: Command): Command {
  return command
    .option('--metrics-host <host>', 'interface the /metrics HTTP endpoint listens on', '127.0.0.1')
    .option('--metrics-port <port>', '/metrics HTTP port (0 picks a free one)', parsePort, 0)
    .option(
      '--metrics-tls',
      'serve /metrics (and the dashboard) over HTTPS with the --tls certificate, to clients the CA signed',
    );
}

/** A metrics server as the flags describe it (not yet started). */
export function metricsServerFrom(flags: MetricsFlags, routes?: HttpRoutes): MetricsServer {
  if (flags.metricsTls && !flags.tls)
    throw new InvalidArgumentError('--metrics-tls needs --tls DIR');
  const tls = flags.metricsTls ? flags.tls : undefined;
  return new MetricsServer({ host: flags.metricsHost, port: flags.metricsPort, routes, tls });
}
