import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import { InvalidArgumentError } from '../errors';
import type { Dataset, DatasetSource } from './dataset';
import { readFailure } from './read-file';

export interface CsvOptions {
  /** The column holding the class label. Defaults to the last column. */
  labelColumn?: string;
}

interface CsvRow {
  record: string[];
  info: { lines: number };
}

async function readText(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read CSV file ${file}: ${readFailure(err)}`, {
      cause: err,
    });
  }
}

function parseRows(file: string, text: string): CsvRow[] {
  try {
    return parse(text, {
      info: true,
      skip_empty_lines: true,
      trim: true,
      bom: true,
    }) as unknown as CsvRow[];
  } catch (err) {
    // csv-parse's messages already carry the line ("... at line 3").
    const why = err instanceof Error ? err.message : String(err);
    throw new InvalidArgumentError(`malformed CSV file ${file}: ${why}`, { cause: err });
  }
}

function labelIndex(file: string, header: string[], labelColumn: string | undefined): number {
  if (labelColumn === undefined) return header.length - 1;
  const index = header.indexOf(labelColumn);
  if (index < 0) {
    throw new InvalidArgumentError(
      `CSV file ${file} has no column "${labelColumn}"; columns: ${header.join(', ')}`,
    );
  }
  return index;
}

/** Distinct labels in order: numerically when every label is a number, else as strings. */
function classNamesOf(labels: string[]): string[] {
  const distinct = [...new Set(labels)];
  const numeric = distinct.every((l) => l !== '' && Number.isFinite(Number(l)));
  return numeric ? distinct.sort((a, b) => Number(a) - Number(b)) : distinct.sort();
}

/** Rows of `header.length` fields after the header: numeric features plus one label column. */
function toDataset(file: string, header: string[], rows: CsvRow[], label: number): Dataset {
  const width = header.length - 1;
  const features = new Float32Array(rows.length * width);
  const rawLabels: string[] = [];
  rows.forEach((row, r) => {
    let f = 0;
    row.record.forEach((value, c) => {
      if (c === label) {
        if (value === '') {
          throw new InvalidArgumentError(
            `CSV file ${file} row ${r + 1} (line ${row.info.lines}), label column "${header[c]}": is empty`,
          );
        }
        rawLabels.push(value);
        return;
      }
      const x = value === '' ? NaN : Number(value);
      if (!Number.isFinite(x)) {
        const what = value === '' ? 'is empty' : `"${value}" is not a number`;
        throw new InvalidArgumentError(
          `CSV file ${file} row ${r + 1} (line ${row.info.lines}), column "${header[c]}": ${what}`,
        );
      }
      features[r * width + f++] = x;
    });
  });
  const classNames = classNamesOf(rawLabels);
  if (classNames.length < 2) {
    throw new InvalidArgumentError(
      `CSV file ${file}: label column "${header[label]}" has ${classNames.length} distinct value(s); at least 2 classes are needed`,
    );
  }
  const classOf = new Map(classNames.map((name, i) => [name, i]));
  const labels = Int32Array.from(rawLabels, (l) => classOf.get(l) ?? -1);
  return {
    features,
    labels,
    count: rows.length,
    featureShape: [width],
    numClasses: classNames.length,
    classNames,
    exampleNames: rows.map((row) => `${file}:${row.info.lines}`),
  };
}

/** `csv:PATH`: a header row, numeric feature columns and one label column. */
export class CsvSource implements DatasetSource {
  readonly spec: string;

  constructor(
    readonly file: string,
    private readonly options: CsvOptions = {},
  ) {
    this.spec = `csv:${file}`;
  }

  /** The file's resolved path, size and modification time, and the label column asked for. */
  async fingerprint(): Promise<string | undefined> {
    try {
      const { size, mtimeMs } = await fs.stat(this.file);
      return JSON.stringify([path.resolve(this.file), size, mtimeMs, this.options.labelColumn]);
    } catch {
      return undefined; // load() says what is wrong with the file
    }
  }

  async load(): Promise<Dataset> {
    const rows = parseRows(this.file, await readText(this.file));
    if (rows.length === 0) throw new InvalidArgumentError(`CSV file ${this.file} is empty`);
    const header = rows[0].record;
    if (rows.length === 1)
      throw new InvalidArgumentError(`CSV file ${this.file} has a header but no data rows`);
    if (header.length < 2) {
      throw new InvalidArgumentError(
        `CSV file ${this.file} needs at least one feature column and a label column`,
      );
    }
    const label = labelIndex(this.file, header, this.options.labelColumn);
    return toDataset(this.file, header, rows.slice(1), label);
  }
}
