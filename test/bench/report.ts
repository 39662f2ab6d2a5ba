/**
 * What every section of `npm run bench` writes to: JSON lines on stdout (kept, so the summary
 * line can quote them), progress on stderr, and the errors that make the bench exit 1.
 */

/** What each section takes from the command line. */
export interface SectionOptions {
  /** How many times each repeated run is repeated (median and min/max over them). */
  runs: number;
  /** The time limit of one child process, in seconds. */
  timeoutS: number;
}

export class BenchReport {
  readonly lines: Record<string, unknown>[] = [];
  readonly errors: string[] = [];

  /** Arrow properties, so sections can hand them on as callbacks (convnets.ts, large-model.ts). */
  readonly emit = (line: Record<string, unknown>): void => {
    this.lines.push(line);
    process.stdout.write(JSON.stringify(line) + '\n');
  };

  readonly log = (message: string): void => {
    process.stderr.write(`[bench] ${message}\n`);
  };

  fail(message: string): void {
    this.errors.push(message);
  }

  /** The lines emitted so far with this `bench` name. */
  linesOf(bench: string): Record<string, unknown>[] {
    return this.lines.filter((l) => l.bench === bench);
  }
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
