/**
 * The single section of `npm run bench`: `gradients()` alone in one process (single-process.ts,
 * a child process per backend so each gets a clean tfjs), per backend: the compute limit the
 * cluster lines divide by.
 */
import * as path from 'node:path';
import { failure, lastJsonLine, runChild } from './children';
import { messageOf, type BenchReport } from './report';
import type { SingleProcessResult } from './single-process';
import { BATCH, MODEL } from './train-runs';

const SINGLE_PROCESS_JS = path.join(__dirname, 'single-process.js');

async function singleProcess(
  backend: string,
  seconds: number,
  timeoutS: number,
  report: BenchReport,
): Promise<SingleProcessResult | undefined> {
  report.log(`single process: ${backend}, ${seconds} s of gradients() on ${MODEL}, batch ${BATCH}`);
  const r = await runChild(
    process.execPath,
    [
      SINGLE_PROCESS_JS,
      '--backend',
      backend,
      '--model',
      MODEL,
      '--batch',
      String(BATCH),
      '--seconds',
      String(seconds),
    ],
    timeoutS,
  );
  try {
    if (r.code !== 0) throw new Error(failure(r, 'single-process'));
    const result = lastJsonLine<SingleProcessResult>(r.stdout, (v) => v.bench === 'single_process');
    report.emit({ ...result });
    return result;
  } catch (err) {
    const message = messageOf(err);
    report.emit({ bench: 'single_process', requested: backend, model: MODEL, error: message });
    report.fail(`single_process ${backend}: ${message}`);
    return undefined;
  }
}

/**
 * Examples/s of one process, keyed by the backend that ran and by `requested:<choice>`. With
 * `allBackends` (the single section) wasm, cpu and auto; otherwise (the cluster section alone)
 * only what auto picks, which is all the cluster lines need.
 */
export async function computeLimits(
  allBackends: boolean,
  timeoutS: number,
  report: BenchReport,
): Promise<Map<string, number>> {
  const single = new Map<string, number>();
  const record = (r: SingleProcessResult | undefined, requested: string): void => {
    if (!r) return;
    // An explicit choice names its backend's figure; auto's only fills in a backend not run.
    if (!single.has(r.backend) || requested !== 'auto') single.set(r.backend, r.examples_per_s);
    single.set(`requested:${requested}`, r.examples_per_s);
  };
  const runs: Array<[backend: string, seconds: number]> = allBackends
    ? [
        ['wasm', 2],
        ['cpu', 1],
        ['auto', 2],
      ]
    : [['auto', 2]];
  for (const [backend, seconds] of runs)
    record(await singleProcess(backend, seconds, timeoutS, report), backend);
  return single;
}
