import { performance } from 'node:perf_hooks';
import type { EvalData, TrialModel } from './compute-backend';

/** Examples timed one at a time for the inference-latency measure: enough for a p95. */
const LATENCY_SAMPLES = 40;

/**
 * The 95th-percentile time to predict one example of `data` (validation), in ms, as a sweep's
 * satisficing constraint (`predict_ms_p95 < 5`) reads it; the first call warms the model up and
 * is not counted.
 */
export function predictLatencyP95(model: TrialModel, data: EvalData): number {
  const size = data.features.length / Math.max(1, data.count);
  const n = Math.min(LATENCY_SAMPLES, data.count);
  const times: number[] = [];
  for (let i = -1; i < n; i++) {
    const at = Math.max(0, i);
    const started = performance.now();
    model.evaluate(
      data.features.subarray(at * size, (at + 1) * size),
      data.labels.subarray(at, at + 1),
      1,
    );
    if (i >= 0) times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times.length ? times[Math.min(times.length - 1, Math.floor(0.95 * times.length))] : 0;
}
