import pino from 'pino';

export type Logger = pino.Logger;

/**
 * A process's logger: JSON lines on stderr (stdout is kept for machine-readable output such as
 * `--json` summaries and role readiness lines). CAVIAR_LOG_LEVEL overrides the level.
 */
export function createLogger(name: string, bindings: Record<string, string | number> = {}): Logger {
  return pino(
    {
      name,
      level: process.env.CAVIAR_LOG_LEVEL ?? 'info',
      base: { pid: process.pid, ...bindings },
    },
    pino.destination(2),
  );
}
