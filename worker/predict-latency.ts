import { performance } from 'node:perf_hooks';
import type { TrialContext } from './trial-context';

/** Examples timed one at a time for the inference-latency measure: enough for a p95. */
const LATENCY_SAMPLES = 40;

/**
 * The 95th-percentile time to predict one validation example, in ms, as a sweep's satisficing
 * constraint (`predict_ms_p95 < 5`) reads it; the first call warms the model up and is not counted.
 */
export function predictLatencyP95(context: TrialContext): number {
  const { validation } = context.splits;
  const size = validation.features.length / Math.max(1, validation.count);
  const n = Math.min(LATENCY_SAMPLES, validation.count);
  const times: number[] = [];
  for (let i = -1; i < n; i++) {
    const at = Math.max(0, i);
    const started = performance.now();
    context.model.evaluate(
      validation.features.subarray(at * size, (at + 1) * size),
      validation.labels.subarray(at, at + 1),
      1,
    );
    if (i >= 0) times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times.length ? times[Math.min(times.length - 1, Math.floor(0.95 * times.length))] : 0;
}
