import * as fs from 'node:fs/promises';
import { FailedPreconditionError, NotFoundError } from '../core/errors';
import { initialSlice, seededInit } from '../core/model-spec';
import { readExportedTensors } from '../core/export-model';
import { trainedParams, transferredValues, type SourceTensor } from '../core/transfer';
import { shardModeOf, stalenessBoundOf, type ResolvedTrialSpec } from '../core/trial-spec';
import type { InitTrialHeader } from '../core/ps-client';
import type { SeededInit } from '../proto/gen/caviar/v1/SeededInit';
import { TERMINAL_STATES } from './trial-record';
import type { TrialBasis } from './trial-basis';
import type { TrialShards } from './trial-shards';
import type { TrialTable } from './trial-table';

/** What a new trial starts from. */
export interface TrialStart {
  /**
   * The trained tensors' initial values: a seed each shard draws its slices from (no model-sized
   * copy here), or, for a trial that starts from another model, the values themselves.
   */
  initial: Map<string, Float32Array> | SeededInit;
  /** The frozen tensors' values, which no shard holds: the coordinator keeps them. */
  frozen: Map<string, Float32Array>;
  /** What every shard's Init says besides its slices. */
  header: Omit<InitTrialHeader, 'slices'>;
}

function initHeader(spec: ResolvedTrialSpec, basis: TrialBasis): Omit<InitTrialHeader, 'slices'> {
  const movingAverages = Object.fromEntries(
    basis.params.flatMap((p) => (p.movingAverage === undefined ? [] : [[p.name, p.movingAverage]])),
  );
  return {
    optimizer: spec.optimizer,
    mode: shardModeOf(spec.mode),
    maxStaleness: stalenessBoundOf(spec.mode) ?? 0,
    movingAverages,
  };
}

/** Works out where a trial starts: its seed, or another trial's or an export's parameters. */
export class TrialStarts {
  constructor(
    private readonly trials: TrialTable,
    private readonly shards: TrialShards,
  ) {}

  async start(spec: ResolvedTrialSpec, basis: TrialBasis): Promise<TrialStart> {
    const { initFrom } = spec.transfer;
    const trained = trainedParams(basis.params, basis.frozen);
    const header = initHeader(spec, basis);
    if (!initFrom && basis.frozen.size === 0)
      return { initial: seededInit(trained, spec.seed), frozen: new Map(), header };
    const all = initFrom
      ? transferredValues(
          basis.params,
          await this.sourceTensors(initFrom),
          spec.transfer,
          spec.seed,
          initFrom,
        )
      : undefined;
    return {
      initial: all
        ? new Map(trained.map((p) => [p.name, all.get(p.name)!]))
        : seededInit(trained, spec.seed),
      frozen: new Map(
        basis.params
          .filter((p) => basis.frozen.has(p.name))
          .map((p) => [p.name, all?.get(p.name) ?? initialSlice(p, spec.seed)]),
      ),
      header,
    };
  }

  /**
   * The tensors of `initFrom`: a trial of this coordinator (its final parameters once it ended,
   * its current ones while it runs), else a LayersModel directory the coordinator can read.
   */
  private async sourceTensors(initFrom: string): Promise<Map<string, SourceTensor>> {
    const source = this.trials.find(initFrom);
    if (source) {
      if (TERMINAL_STATES.has(source.run.state) && !source.finalParams)
        throw new FailedPreconditionError(
          `init_from trial ${initFrom} ended without parameters this coordinator still holds (it failed, or a coordinator restarted since); export a trial with caviar train --export DIR and start from DIR`,
        );
      const values = source.finalParams ?? (await this.shards.pullAll(source));
      return new Map(
        source.params.map((p) => [p.name, { shape: p.shape, values: values.get(p.name)! }]),
      );
    }
    const isDirectory = await fs
      .stat(initFrom)
      .then((s) => s.isDirectory())
      .catch(() => false);
    if (!isDirectory)
      throw new NotFoundError(
        `init_from ${JSON.stringify(initFrom)} is neither a trial of this coordinator nor a model directory it can read (a path must be one the coordinator sees)`,
      );
    return readExportedTensors(initFrom);
  }
}
