/** One epoch record's fields (either generated EpochRecord type) that a learning curve plots. */
export interface EpochMeasuresView {
  train_loss?: number | string;
  train_accuracy?: number | string;
  val_loss?: number | string;
  val_accuracy?: number | string;
  train_dev_loss?: number | string;
  train_dev_accuracy?: number | string;
}

export interface EpochMeasures {
  train_loss: number;
  train_accuracy: number;
  val_loss: number;
  val_accuracy: number;
  train_dev_loss: number;
  train_dev_accuracy: number;
}

/** The loss and accuracy of each split after an epoch, as numbers; an absent one is `missing`. */
export function epochMeasures(h: EpochMeasuresView, missing: number): EpochMeasures {
  const num = (v: number | string | undefined): number =>
    v === undefined || v === null ? missing : Number(v);
  return {
    train_loss: num(h.train_loss),
    train_accuracy: num(h.train_accuracy),
    val_loss: num(h.val_loss),
    val_accuracy: num(h.val_accuracy),
    train_dev_loss: num(h.train_dev_loss),
    train_dev_accuracy: num(h.train_dev_accuracy),
  };
}
