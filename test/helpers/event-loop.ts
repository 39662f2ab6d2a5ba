/** The p99 event-loop delay a role's /metrics reports now (prom-client's, from perf_hooks). */
export async function eventLoopP99(metricsUrl: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const m = /^nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})? ([\d.e+-]+)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The highest event-loop delay p99 each role reported, scraped every `everyMs` until stopped.
 * prom-client's histogram starts again after each scrape, so each figure covers one interval.
 */
export class EventLoopWatch {
  private readonly highest = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(roles: ReadonlyArray<{ id: string; metrics?: string }>, everyMs = 1_000) {
    for (const r of roles) this.highest.set(r.id, 0);
    this.timer = setInterval(() => {
      for (const r of roles) {
        if (!r.metrics) continue;
        void eventLoopP99(r.metrics).then((p99) => {
          if (p99 !== undefined) this.highest.set(r.id, Math.max(this.highest.get(r.id)!, p99));
        });
      }
    }, everyMs);
  }

  /** Seconds, by role id. */
  stop(): Map<string, number> {
    clearInterval(this.timer);
    return new Map(this.highest);
  }
}
