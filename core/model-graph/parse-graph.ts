import { fieldName, parseSpecText, SpecFileError } from '../spec-file';
import { modelGraphSchema, type ModelGraph } from './layer-spec';
import { GraphProblem, resolveGraph } from './resolve';

/** A model spec that cannot be used; `message` is the first problem as `FILE:LINE:COL: FIELD: WHAT`. */
export class ModelSpecError extends SpecFileError {}

/**
 * Parses a layer-graph spec written in YAML or JSON. Where it names its `input`, the shapes are
 * checked too (a kernel larger than its input, a residual block that cannot be projected), each
 * problem pointing at its place in the file.
 */
export function parseModelGraph(text: string, source: string): ModelGraph {
  const { data, locate } = parseSpecText(
    text,
    source,
    modelGraphSchema,
    'the model spec is empty; expected a mapping with layers (and input)',
    (src, problems) => new ModelSpecError(src, problems),
  );
  const graph = data as ModelGraph;
  const problem = shapeProblem(graph);
  if (problem)
    throw new ModelSpecError(source, [
      { ...locate(problem.path), field: fieldName(problem.path), message: problem.message },
    ]);
  return graph;
}

/**
 * Where a graph that names its `input` cannot work (a kernel larger than its input, a residual
 * block that cannot be projected); undefined when it can, or names no input.
 */
export function shapeProblem(graph: ModelGraph): GraphProblem | undefined {
  if (!graph.input) return undefined;
  const last = graph.layers[graph.layers.length - 1];
  // The class count only sizes the head, so any will do unless the spec names its own.
  const classes = last.type === 'dense' && last.activation === 'softmax' ? last.units : 2;
  try {
    resolveGraph(graph, graph.input, classes);
    return undefined;
  } catch (err) {
    if (err instanceof GraphProblem) return err;
    throw err;
  }
}
