import type {
  OptimizerConfig as WireOptimizerConfig,
  OptimizerConfig__Output,
} from '../proto/gen/caviar/v1/OptimizerConfig';
import { InvalidArgumentError } from './errors';
import { parseLrDecay } from './lr-schedule';

/**
 * A fully resolved optimizer configuration: the wire message with every field set. Clients
 * resolve before sending and shards validate what they receive as-is, so proto3's "0 means
 * unset" never reaches the math.
 */
export type OptimizerConfig = OptimizerConfig__Output;

export type OptimizerKind = 'adam' | 'sgd' | 'momentum' | 'rmsprop';

export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ['adam', 'sgd', 'momentum', 'rmsprop'];

/** Adam's constants are the paper's (and tf.train.adam's); momentum and rho are Keras's. */
export const OPTIMIZER_DEFAULTS: Readonly<OptimizerConfig> = Object.freeze({
  kind: 'adam',
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  momentum: 0.9,
  rho: 0.9,
  l2: 0,
  lr_decay: '',
});

export function isOptimizerKind(kind: string): kind is OptimizerKind {
  return (OPTIMIZER_KINDS as readonly string[]).includes(kind);
}

/**
 * Fills the fields that are `undefined` with OPTIMIZER_DEFAULTS and validates the result.
 * Unlike on the wire, an explicit 0 here is a value, not "unset" (momentum 0 is meaningful).
 */
export function resolveOptimizerConfig(cfg: Partial<OptimizerConfig> = {}): OptimizerConfig {
  const resolved = { ...OPTIMIZER_DEFAULTS };
  for (const key of Object.keys(resolved) as Array<keyof OptimizerConfig>) {
    const value = cfg[key];
    if (value !== undefined) Object.assign(resolved, { [key]: value });
  }
  return validateOptimizerConfig(resolved);
}

/**
 * Resolves a config as it arrives over gRPC inside another message (a TrialSpec): proto3 sends
 * unset fields as 0 and "", so here 0, "", null and undefined all mean "use the default". The
 * price: a wire config cannot ask for momentum 0, rho 0 or beta1 0 (use kind sgd instead of
 * momentum 0). Numbers given as strings (protobuf's long form) are parsed.
 */
export function resolveWireOptimizerConfig(cfg: WireOptimizerConfig | null = {}): OptimizerConfig {
  const given: Partial<OptimizerConfig> = {};
  for (const [key, value] of Object.entries(cfg ?? {})) {
    if (!(key in OPTIMIZER_DEFAULTS) || value === undefined || value === null || value === '')
      continue;
    const isText = key === 'kind' || key === 'lr_decay';
    const parsed = isText ? String(value) : Number(value);
    if (parsed !== 0) Object.assign(given, { [key]: parsed });
  }
  return resolveOptimizerConfig(given);
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new InvalidArgumentError(`optimizer config: ${message}`);
}

function inUnitInterval(value: number): boolean {
  return Number.isFinite(value) && value >= 0 && value < 1;
}

/** Throws InvalidArgumentError naming the first bad field; returns `cfg` unchanged when valid. */
export function validateOptimizerConfig(cfg: OptimizerConfig): OptimizerConfig {
  check(
    isOptimizerKind(cfg.kind),
    `kind "${cfg.kind}" is not one of ${OPTIMIZER_KINDS.join(', ')}`,
  );
  check(Number.isFinite(cfg.lr) && cfg.lr > 0, `lr must be a finite number > 0, got ${cfg.lr}`);
  check(inUnitInterval(cfg.beta1), `beta1 must be in [0, 1), got ${cfg.beta1}`);
  check(inUnitInterval(cfg.beta2), `beta2 must be in [0, 1), got ${cfg.beta2}`);
  check(
    Number.isFinite(cfg.epsilon) && cfg.epsilon > 0,
    `epsilon must be a finite number > 0, got ${cfg.epsilon}`,
  );
  check(inUnitInterval(cfg.momentum), `momentum must be in [0, 1), got ${cfg.momentum}`);
  check(inUnitInterval(cfg.rho), `rho must be in [0, 1), got ${cfg.rho}`);
  check(Number.isFinite(cfg.l2) && cfg.l2 >= 0, `l2 must be a finite number >= 0, got ${cfg.l2}`);
  parseLrDecay(cfg.lr_decay, cfg.lr);
  return cfg;
}
