/**
 * Fail points for fault tests, in the manner of etcd's gofail: off unless the CAVIAR_FAULT
 * environment variable names them, e.g. `CAVIAR_FAULT=stop-before-push:3,drop-push-reply:5`.
 * `hit(name)` is true exactly once, on the N-th time the named point is reached.
 */
const armed = new Map<string, number>();
const reached = new Map<string, number>();

for (const part of (process.env.CAVIAR_FAULT ?? '').split(',')) {
  const [name, count] = part.trim().split(':');
  const n = Number(count ?? '1');
  if (name && Number.isInteger(n) && n > 0) armed.set(name, n);
}

export function hit(name: string): boolean {
  const at = armed.get(name);
  if (at === undefined) return false;
  const n = (reached.get(name) ?? 0) + 1;
  reached.set(name, n);
  return n === at;
}
