import type { PushHeader__Output } from '../proto/gen/caviar/v1/PushHeader';
import { errorMessage } from '../core/errors';
import { pullValueCodec, valueCodec, type ValueCodec } from '../core/value-codec';
import { RefusedInputError } from './refusal';

/** A pushed gradient as refusals name it. */
export const gradientName = ({ trial, epoch, batch }: PushHeader__Output): string =>
  `gradient of trial ${trial} (epoch ${epoch}, batch ${batch})`;

/** The codec of `name` from `codecOf`; an unknown one is a bad header. */
function headerCodec(
  header: PushHeader__Output,
  name: string,
  codecOf: (name: string) => ValueCodec,
): ValueCodec {
  try {
    return codecOf(name);
  } catch (err) {
    throw new RefusedInputError('bad_header', `${gradientName(header)}: ${errorMessage(err)}`);
  }
}

/** How a streamed push's chunks encode its gradient. */
export const pushCodec = (header: PushHeader__Output): ValueCodec =>
  headerCodec(header, header.codec, valueCodec);

/** How a push-pull's answer encodes the values it carries back. */
export const answerCodec = (header: PushHeader__Output): ValueCodec =>
  headerCodec(header, header.pull_codec, pullValueCodec);
