/**
 * Text from a peer (the worker's error frames and close reasons, a frame that did not parse, a
 * branch name from a push) made safe to put in one log line: a peer that could put a newline in
 * our log could forge lines such as "[job x] finished: succeeded".
 *
 * C0 and C1 control characters, DEL and the Unicode line/paragraph separators are escaped the way
 * JSON writes them (`\n`, `\u0085`); everything else, backslashes included, is left as it is, so
 * text that is already JSON-quoted reads the same. Longer than `maxChars`, the text is cut and says
 * how much was left out.
 */
export const PEER_TEXT_MAX_CHARS = 1000;

const SHORT: Record<string, string> = { "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r" };
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

export function peerText(text: string, maxChars = PEER_TEXT_MAX_CHARS): string {
  let cut = text.length > maxChars ? maxChars : text.length;
  // Never leave half of a surrogate pair at the cut.
  if (cut < text.length && cut > 0 && /[\ud800-\udbff]/.test(text[cut - 1]!)) cut--;
  const kept = text.slice(0, cut).replace(UNSAFE, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return cut < text.length ? `${kept}… (${text.length - cut} more characters)` : kept;
}
