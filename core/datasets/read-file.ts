import * as fs from 'node:fs/promises';
import { InvalidArgumentError } from '../errors';

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
};

/** Why a file could not be read, in words. */
export function readFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return READ_ERRORS[code] ?? (err instanceof Error ? err.message : String(err));
}

/** The file's bytes, or an InvalidArgumentError naming it: `cannot read KIND FILE: WHY`. */
export async function readFileOrExplain(file: string, kind: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${kind} ${file}: ${readFailure(err)}`, {
      cause: err,
    });
  }
}
