/** The parts of a trial's status (either generated TrialStatus type) that name its settings. */
export interface TrialSettingsView {
  hyper_json?: string;
  spec?: {
    batch?: number | string | null;
    mode?: string;
    optimizer?: { kind?: string; lr?: number | string; l2?: number | string } | null;
  } | null;
}

const num = (v: unknown): number => (v === undefined || v === null ? 0 : Number(v));

/**
 * A trial's hyper-parameters for tables and charts: the values its sweep sampled, or, for a lone
 * trial (or an unreadable blob), the settings a sweep would vary.
 */
export function trialHyper(t: TrialSettingsView): Record<string, unknown> {
  if (t.hyper_json) {
    try {
      const parsed: unknown = JSON.parse(t.hyper_json);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        return parsed as Record<string, unknown>;
    } catch {
      // Falls back to the trial's own settings below rather than failing a page or a report.
    }
  }
  const spec = t.spec;
  return {
    optimizer: spec?.optimizer?.kind ?? '',
    lr: num(spec?.optimizer?.lr),
    l2: num(spec?.optimizer?.l2),
    batch: num(spec?.batch),
    mode: spec?.mode ?? '',
  };
}
