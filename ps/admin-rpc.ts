import type * as grpc from '@grpc/grpc-js';
import type { InitMessage__Output } from '../proto/gen/caviar/v1/InitMessage';
import type { InitReply } from '../proto/gen/caviar/v1/InitReply';
import type { ParameterServerHandlers } from '../proto/gen/caviar/v1/ParameterServer';
import type { SeededInit__Output } from '../proto/gen/caviar/v1/SeededInit';
import { InvalidArgumentError } from '../core/errors';
import type { ShardCore, TrialInit } from './shard-core';
import { isConsistencyMode } from './trial-shard';
import { validateOptimizerConfig, type OptimizerConfig } from '../core/optimizer-config';
import { SliceAssembler, validateSliceRanges, type SliceRange } from './slice-assembler';
import { consume, type ShardReplies } from './rpc-reply';

type AdminRpcs = Pick<
  ParameterServerHandlers,
  'Init' | 'Drop' | 'Stats' | 'Applied' | 'Capacity' | 'SetLearningRate'
>;

/** The coordinator's calls: a trial's start (its values or seed), its end, and questions. */
export function adminHandlers(core: ShardCore, replies: ShardReplies): AdminRpcs {
  return {
    Init: (call, callback) => replies.reply(() => init(core, call), callback),
    Drop: (call, callback) => replies.reply(() => core.drop(call.request.trial), callback),
    Stats: (call, callback) => replies.reply(() => core.stats(call.request.trial), callback),
    Applied: (call, callback) =>
      replies.reply(() => {
        const { trial, snapshot, epoch } = call.request;
        return core.applied(trial, snapshot, epoch);
      }, callback),
    Capacity: (call, callback) => replies.reply(() => core.capacity(call.request), callback),
    SetLearningRate: (call, callback) =>
      replies.reply(() => {
        core.setLearningRate(call.request.trial, call.request.lr);
        return { dropped: false };
      }, callback),
  };
}

/** An Init stream: its header (admitted at once), then the initial values' chunks or none. */
async function init(
  core: ShardCore,
  call: grpc.ServerReadableStream<InitMessage__Output, InitReply>,
): Promise<InitReply> {
  let header: TrialInit | undefined;
  let assembler: SliceAssembler | undefined;
  let seeded: SeededInit__Output | null = null;
  await consume(call, (msg) => {
    if (msg.header) {
      if (header)
        throw new InvalidArgumentError(`Init of trial ${header.trial} sent a second header`);
      header = validateTrialInit(msg.header);
      // Before the assembler takes the slices' memory.
      core.admit(header);
      seeded = msg.header.seeded;
      if (!seeded)
        assembler = new SliceAssembler(header.slices, `initial values of trial ${header.trial}`);
    } else if (msg.chunk) {
      if (seeded) throw new InvalidArgumentError('a seeded Init takes no chunks');
      if (!assembler) throw new InvalidArgumentError('Init stream sent a chunk before its header');
      assembler.add(msg.chunk);
    }
  });
  if (!header) throw new InvalidArgumentError('Init stream ended without a header');
  const elements = await core.install(header, seeded ?? assembler!.finish());
  return { elements };
}

/** Checks an Init header's fields, throwing INVALID_ARGUMENT for the first one that is wrong. */
function validateTrialInit(header: {
  trial: string;
  optimizer: OptimizerConfig | null;
  mode: string;
  slices: SliceRange[];
  moving_averages: Record<string, number>;
  max_staleness: number;
}): TrialInit {
  const { trial, optimizer, mode, slices } = header;
  if (!trial) throw new InvalidArgumentError('Init header has an empty trial id');
  if (!optimizer) throw new InvalidArgumentError(`Init of trial ${trial} has no optimizer config`);
  if (!isConsistencyMode(mode)) {
    throw new InvalidArgumentError(`Init of trial ${trial}: mode "${mode}" is not sync or async`);
  }
  validateSliceRanges(slices);
  const movingAverages = new Map(Object.entries(header.moving_averages));
  for (const [name, momentum] of movingAverages)
    if (!(momentum > 0 && momentum < 1))
      throw new InvalidArgumentError(
        `Init of trial ${trial}: ${name} has moving-average momentum ${momentum}, not in (0, 1)`,
      );
  if (header.max_staleness > 0 && mode !== 'async')
    throw new InvalidArgumentError(`Init of trial ${trial}: a staleness bound needs mode async`);
  return {
    trial,
    optimizer: validateOptimizerConfig(optimizer),
    mode,
    slices,
    movingAverages,
    maxStaleness: header.max_staleness,
  };
}
