import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SweepStatus__Output } from '../proto/gen/caviar/v1/SweepStatus';
import { CoordinatorClient } from '../core/coordinator-client';
import { loadSplits } from '../core/datasets';
import { parseSweepSpec } from '../core/sweep';
import { UsageError } from './exit-codes';
import { onCluster, type ClusterChoice } from './on-cluster';
import { follow } from './follow';
import { SweepProgress } from './sweep-progress';
import { sweepReport, sweepSummary } from './sweep-summary';
import { checkAugmentFits, parseAugment } from '../core/augment-spec';

export type SweepOptions = ClusterChoice;

/** Submits a sweep and follows it to its end, showing the live view unless `json`. */
async function followSweep(
  client: CoordinatorClient,
  text: string,
  file: string,
  json: boolean,
): Promise<SweepStatus__Output> {
  const submitted = await client.submitSweep({
    spec: text,
    source: path.basename(file),
    base_dir: path.dirname(path.resolve(file)),
  });
  const progress = json ? undefined : new SweepProgress();
  try {
    return await follow(
      submitted,
      () => client.watchSweep(submitted.sweep),
      (s) => progress?.update(s),
    );
  } finally {
    progress?.stop();
  }
}

/** `caviar sweep SPEC`: many trials at once on the cluster, chosen by one number. */
export async function sweepCommand(file: string, options: SweepOptions): Promise<number> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read sweep spec ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  // Errors name file:line:col and the field, before any process starts.
  const spec = parseSweepSpec(text, path.basename(file), {
    baseDir: path.dirname(path.resolve(file)),
  });
  const validate = async () => {
    const splits = await loadSplits(spec.dataset.spec, {
      labelColumn: spec.dataset.labelColumn || undefined,
    });
    // The fixed augmentation and every searched one must suit the data, or no trial can start.
    const searched = spec.search.augment;
    const augments = searched?.kind === 'choice' ? searched.values : [spec.train.augment];
    for (const a of augments) checkAugmentFits(parseAugment(String(a)), splits.train.featureShape);
  };
  return onCluster(options, validate, async (client) => {
    const status = await followSweep(client, text, file, options.json ?? false);
    if (options.json) process.stdout.write(JSON.stringify(sweepSummary(status)) + '\n');
    else process.stdout.write(sweepReport(status) + '\n');
    return status.status === 'completed' ? 0 : 1;
  });
}
