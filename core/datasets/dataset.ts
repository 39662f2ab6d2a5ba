/** A labelled data set held in memory: `count` examples of `featureShape`, row-major. */
export interface Dataset {
  features: Float32Array;
  labels: Int32Array;
  count: number;
  featureShape: number[];
  numClasses: number;
  /** Class names in label order (e.g. the CSV label column's distinct values). */
  classNames: string[];
  /**
   * Where each example came from (an image's file, `FILE:line` of a CSV row, `FILE#i` of an IDX
   * entry), for reports; set by sources that have such names, on the data set as loaded (its
   * splits leave it out).
   */
  exampleNames?: string[];
}

/**
 * Train / validation / test, features normalized with train statistics, and train-dev: a slice
 * of the training distribution that is never trained on, so the gap train → train-dev measures
 * variance and the gap train-dev → validation measures data mismatch.
 */
export interface DatasetSplits {
  train: Dataset;
  trainDev: Dataset;
  validation: Dataset;
  test: Dataset;
}

/** Where a data set comes from: mnist, csv:PATH, synthetic:NAME. */
export interface DatasetSource {
  /** The spec it was made from, e.g. "csv:data.csv". */
  readonly spec: string;
  load(): Promise<Dataset>;
  /**
   * What the examples depend on (files' sizes and modification times), so that what is derived
   * from them can be cached between processes; undefined (or absent) where there is nothing
   * stable to key on, or nothing worth caching (generated data).
   */
  fingerprint?(): Promise<string | undefined>;
}
