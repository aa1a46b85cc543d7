/**
 * Peer text (an agent's error frame, a close reason, a hello's version) as it goes into the worker's
 * log: quoted, with every control character escaped, so whoever holds an agent token cannot start a
 * forged log line. JSON escapes C0 controls; C1, DEL and the Unicode line separators are added here.
 */
export function logText(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
