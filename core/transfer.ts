import { InvalidArgumentError } from './errors';
import { commaList } from './comma-list';
import { initialSlice, type ParamInfo } from './model-spec';
import { elementCount } from './placement';

/**
 * Transfer learning: a trial that starts from another model's parameters (matched by layer name
 * and shape), keeps some layers frozen, and draws others fresh. Frozen layers are constants of
 * the trial: no shard holds them, no worker pushes their gradient.
 */

/** Which layers keep their initial values: none, the first N that have parameters, or by name. */
export type FreezeSpec =
  { kind: 'none' } | { kind: 'first'; count: number } | { kind: 'layers'; names: string[] };

export interface TransferSpec {
  /** A trial id, or a tfjs LayersModel export directory; "" starts from the seed. */
  initFrom: string;
  freeze: FreezeSpec;
  /** Layers drawn from the seed even where initFrom has them. */
  reinit: string[];
}

/** `--freeze` as a trial carries it: "" or "0" for none, N, or LAYER,LAYER... */
export function parseFreeze(text: string | undefined): FreezeSpec {
  const t = (text ?? '').trim();
  if (t === '' || t === '0') return { kind: 'none' };
  if (/^\d+$/.test(t)) {
    const count = Number(t);
    if (!Number.isSafeInteger(count))
      throw new InvalidArgumentError(`freeze "${t}" is not a layer count`);
    return { kind: 'first', count };
  }
  return { kind: 'layers', names: parseLayerNames(t, 'freeze', 'give a count of layers or names') };
}

/** Comma-separated layer names (`--reinit`, a `--freeze` list); INVALID_ARGUMENT for a bad one. */
export function parseLayerNames(text: string, flag: string, hint = 'give names'): string[] {
  const names = commaList(text);
  const bad = names.find((n) => !/^[A-Za-z_][\w-]*$/.test(n));
  if (bad !== undefined)
    throw new InvalidArgumentError(
      `${flag} "${text.trim()}": "${bad}" is not a layer name; ${hint} like conv0,conv1`,
    );
  return names;
}

export function formatFreeze(freeze: FreezeSpec): string {
  if (freeze.kind === 'none') return '';
  return freeze.kind === 'first' ? String(freeze.count) : freeze.names.join(',');
}

/** The layer a tensor belongs to (`conv0/kernel` → `conv0`). */
export function layerOf(tensor: string): string {
  const slash = tensor.lastIndexOf('/');
  return slash < 0 ? tensor : tensor.slice(0, slash);
}

/** The model's layers that have parameters, in the model's order. */
export function paramLayers(params: readonly ParamInfo[]): string[] {
  return [...new Set(params.map((p) => layerOf(p.name)))];
}

function checkLayerNames(
  params: readonly ParamInfo[],
  names: readonly string[],
  flag: string,
): void {
  const layers = paramLayers(params);
  const unknown = names.filter((n) => !layers.includes(n));
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      `${flag}: the model has no layer with parameters named ${unknown.join(', ')}; its layers are ${layers.join(', ')}`,
    );
}

/** The names of the tensors `freeze` keeps constant; INVALID_ARGUMENT for a layer the model lacks. */
export function frozenTensors(params: readonly ParamInfo[], freeze: FreezeSpec): Set<string> {
  if (freeze.kind === 'none') return new Set();
  const layers = paramLayers(params);
  if (freeze.kind === 'layers') checkLayerNames(params, freeze.names, 'freeze');
  const chosen = new Set(freeze.kind === 'first' ? layers.slice(0, freeze.count) : freeze.names);
  if (chosen.size === layers.length)
    throw new InvalidArgumentError(
      `freeze ${formatFreeze(freeze)} leaves nothing to train: the model's layers with parameters are ${layers.join(', ')}`,
    );
  return new Set(params.filter((p) => chosen.has(layerOf(p.name))).map((p) => p.name));
}

/** The tensors the shards hold and the workers push: every one that is not frozen. */
export function trainedParams(
  params: readonly ParamInfo[],
  frozen: ReadonlySet<string>,
): ParamInfo[] {
  return params.filter((p) => !frozen.has(p.name));
}

/**
 * The tensors `transfer` freezes, once it is checked: INVALID_ARGUMENT for a freeze or reinit
 * that names a layer the model lacks, freezes every layer, or freezes a layer it also
 * re-initializes. What the CLI checks before a cluster starts and the coordinator before a trial.
 */
export function checkTransfer(
  params: readonly ParamInfo[],
  transfer: Pick<TransferSpec, 'reinit' | 'freeze'>,
): Set<string> {
  checkLayerNames(params, transfer.reinit, 'reinit');
  const frozen = frozenTensors(params, transfer.freeze);
  const frozenLayers = new Set([...frozen].map(layerOf));
  const both = transfer.reinit.filter((layer) => frozenLayers.has(layer));
  if (both.length > 0)
    throw new InvalidArgumentError(
      `layer ${both.join(', ')} is both frozen and re-initialized: it would never leave its random values`,
    );
  return frozen;
}

/** A tensor of the model a trial starts from. */
export interface SourceTensor {
  shape: readonly number[];
  values: Float32Array;
}

/**
 * A new trial's initial values of every tensor: `source`'s for a tensor of the same name and
 * shape, the seed's for the layers in `reinit`. INVALID_ARGUMENT, naming `origin`, for a layer
 * that `source` lacks or holds in another shape and `reinit` does not name, so a mistyped name
 * or a new head is never silently trained from scratch.
 */
export function transferredValues(
  params: readonly ParamInfo[],
  source: ReadonlyMap<string, SourceTensor>,
  transfer: Pick<TransferSpec, 'reinit' | 'freeze'>,
  seed: number,
  origin: string,
): Map<string, Float32Array> {
  checkTransfer(params, transfer);
  const reinit = new Set(transfer.reinit);
  const values = new Map<string, Float32Array>();
  const problems: string[] = [];
  const unmatched = new Set<string>();
  for (const p of params) {
    if (reinit.has(layerOf(p.name))) {
      values.set(p.name, initialSlice(p, seed));
      continue;
    }
    const from = source.get(p.name);
    if (
      from &&
      from.shape.join() === p.shape.join() &&
      from.values.length === elementCount(p.shape)
    ) {
      values.set(p.name, from.values.slice());
      continue;
    }
    problems.push(
      from
        ? `${p.name} is [${from.shape.join(', ')}] there and [${p.shape.join(', ')}] here`
        : `${p.name} is not in it`,
    );
    unmatched.add(layerOf(p.name));
  }
  if (problems.length > 0)
    throw new InvalidArgumentError(
      `cannot start from ${origin}: ${problems.join('; ')}; name the layer in --reinit (${[...unmatched].join(',')}) to draw it from the seed instead`,
    );
  return values;
}
