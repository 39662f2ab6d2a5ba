import { InvalidArgumentError } from './errors';

/**
 * Gradient compression of a trial's pushes: 16-bit floats (core/value-codec.ts), or top-k with
 * error feedback (worker/error-feedback.ts), whose pushes travel sparse.
 */
export const COMPRESSION_FORMS = ['none', 'bf16', 'fp16', 'topk:RATIO'] as const;

/** A compression's normal form: none, bf16, fp16, or topk:R with 0 < R <= 1. */
export type Compression = 'none' | 'bf16' | 'fp16' | `topk:${number}`;

/** A trial's compression from its wire or CLI form ("" is none); INVALID_ARGUMENT otherwise. */
export function parseCompression(text: string | undefined): Compression {
  const c = (text ?? '').trim() || 'none';
  if (c === 'none' || c === 'bf16' || c === 'fp16') return c;
  const topk = /^topk:(.+)$/.exec(c);
  const ratio = topk ? Number(topk[1]) : NaN;
  if (topk && ratio > 0 && ratio <= 1) return `topk:${ratio}`;
  throw new InvalidArgumentError(
    topk
      ? `compress "${c}": the ratio of values a top-k push keeps must be a number in (0, 1]`
      : `compress "${c}" is not one of ${COMPRESSION_FORMS.join(', ')}`,
  );
}

/** The share of each gradient a top-k trial pushes, or undefined for any other compression. */
export function topKRatioOf(compress: string | undefined): number | undefined {
  const c = parseCompression(compress);
  return c.startsWith('topk:') ? Number(c.slice('topk:'.length)) : undefined;
}

/** How a trial's pulled values travel: none (float32), bf16 or fp16. */
export type PullCompression = 'none' | 'bf16' | 'fp16';
export const PULL_COMPRESSION_FORMS = ['none', 'bf16', 'fp16'] as const;

/** A trial's pull compression from its wire or CLI form ("" is none); INVALID_ARGUMENT otherwise. */
export function parsePullCompression(text: string | undefined): PullCompression {
  const c = (text ?? '').trim() || 'none';
  if (c === 'none' || c === 'bf16' || c === 'fp16') return c;
  throw new InvalidArgumentError(
    `compress-pull "${c}" is not one of ${PULL_COMPRESSION_FORMS.join(', ')}`,
  );
}

/** The codec a trial's pulls and push-pulls ask the values in: none travels as float32 (""). */
export function pullCodecOf(compressPull: string | undefined): string {
  const c = parsePullCompression(compressPull);
  return c === 'none' ? '' : c;
}

/** The codec a trial's pushes name in their header: none travels as raw float32 (""). */
export function pushCodecOf(compress: string | undefined): string {
  const c = parseCompression(compress);
  if (c === 'none') return '';
  return c.startsWith('topk:') ? 'sparse' : c;
}
