/** The items of a comma-separated flag value, trimmed, empty ones dropped ("a, b,," → [a, b]). */
export function commaList(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}
