import { isMap, isNode, isScalar, isSeq, type Document, type LineCounter } from 'yaml';

/** A 1-based line and column in a spec file. */
export interface SourcePosition {
  line: number;
  col: number;
}

function startOf(node: unknown, lines: LineCounter): SourcePosition | undefined {
  if (!isNode(node) || !node.range) return undefined;
  return lines.linePos(node.range[0]);
}

function keyMatches(key: unknown, segment: PropertyKey): boolean {
  const value = isScalar(key) ? key.value : key;
  return String(value) === String(segment);
}

/**
 * Where a value (or, with `at: 'key'`, its key) sits in a parsed YAML/JSON document, found by
 * its path as zod reports it. A path that runs past the document (a missing field) resolves to
 * the deepest part that exists, so "dataset.path is required" points at `dataset`.
 */
export function positionOf(
  doc: Document,
  lines: LineCounter,
  path: readonly PropertyKey[],
  at: 'value' | 'key' = 'value',
): SourcePosition {
  let node: unknown = doc.contents;
  let found = startOf(node, lines) ?? { line: 1, col: 1 };
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => keyMatches(p.key, segment));
      if (!pair) break;
      const keyPos = startOf(pair.key, lines);
      const valuePos = startOf(pair.value, lines);
      found = (last && at === 'key' ? keyPos : (valuePos ?? keyPos)) ?? found;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (item === undefined) break;
      found = startOf(item, lines) ?? found;
      node = item;
    } else {
      break;
    }
  }
  return found;
}
