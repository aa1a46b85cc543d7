/**
 * Whether a string can travel as a value from outside into a process environment (and a log line).
 * A NUL cannot be held by any environment (spawn throws), other control characters forge log and
 * terminal output, an unpaired surrogate is not text at all, and an absurd length fails exec (E2BIG).
 * Checked at every edge a value comes in: the webhook, the agent's job frame, the agent's config.
 */
import { utf8Length } from "./utf8.ts";

export interface TextValueRules {
  /** Upper bound in UTF-8 bytes. */
  maxBytes: number;
  /** Allow tab and newline (config values such as a multi-line certificate); payload values never. */
  multiline?: boolean;
}

// Built from escapes so this file holds no raw control characters.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_BUT_TAB_NL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function codePoint(c: string): string {
  return `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Why `value` cannot be used as an environment value under `rules`, or null when it can. */
export function textValueProblem(value: string, rules: TextValueRules): string | null {
  // Cheap bound first: a string longer than maxBytes UTF-16 units is longer than maxBytes bytes.
  if (value.length > rules.maxBytes || utf8Length(value) > rules.maxBytes) {
    return `is ${utf8Length(value)} bytes long, more than the ${rules.maxBytes} allowed`;
  }
  if (value.includes("\u0000")) return "contains a NUL character (U+0000), which no process environment can hold";
  const control = (rules.multiline ? CONTROL_BUT_TAB_NL : CONTROL).exec(value);
  if (control) return `contains the control character ${codePoint(control[0])}`;
  const surrogate = LONE_SURROGATE.exec(value);
  if (surrogate) return `contains an unpaired surrogate (${codePoint(surrogate[0])}): not valid Unicode text`;
  return null;
}
