/** UTF-8 byte length without Node's Buffer (shared/ compiles for both runtimes). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3; // unpaired: encoded as U+FFFD
    } else bytes += 3;
  }
  return bytes;
}

/** Whether `text` encodes to at most `maxBytes` UTF-8 bytes, without walking it when the answer is plain. */
export function fitsUtf8(text: string, maxBytes: number): boolean {
  if (text.length > maxBytes) return false;
  if (text.length * 3 <= maxBytes) return true;
  return utf8Length(text) <= maxBytes;
}
