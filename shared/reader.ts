/**
 * A tiny typed reader for untrusted JSON: every accessor names the path of the
 * field it rejects, so a bad frame or payload gets an error that says what and where.
 * Used at the edges only (frames, webhook payloads, config); code behind them trusts its types.
 */
import { fitsUtf8 } from "./utf8.ts";

export class InvalidInput extends Error {
  readonly path: string;
  constructor(path: string, why: string) {
    super(path ? `${path}: ${why}` : why);
    this.name = "InvalidInput";
    this.path = path;
  }
}


export class Reader {
  readonly value: unknown;
  readonly path: string;
  constructor(value: unknown, path = "") {
    this.value = value;
    this.path = path;
  }

  fail(why: string): never {
    throw new InvalidInput(this.path, why);
  }

  private child(key: string | number): Reader {
    const obj = this.value as Record<string | number, unknown>;
    const path = typeof key === "number" ? `${this.path}[${key}]` : this.path ? `${this.path}.${key}` : key;
    return new Reader(obj[key], path);
  }

  isObject(): boolean {
    return typeof this.value === "object" && this.value !== null && !Array.isArray(this.value);
  }

  /** The named field of an object (which must be one). */
  field(key: string): Reader {
    if (!this.isObject()) this.fail(`expected an object, got ${describe(this.value)}`);
    if (!Object.prototype.hasOwnProperty.call(this.value, key)) return new Reader(undefined, this.path ? `${this.path}.${key}` : key);
    return this.child(key);
  }

  has(key: string): boolean {
    return this.isObject() && Object.prototype.hasOwnProperty.call(this.value, key) && (this.value as Record<string, unknown>)[key] !== undefined;
  }

  keys(): string[] {
    if (!this.isObject()) this.fail(`expected an object, got ${describe(this.value)}`);
    return Object.keys(this.value as object);
  }

  /** `max` counts UTF-16 units (characters, for names and patterns); `maxBytes` counts UTF-8 bytes (sizes on the wire). */
  string(opts: { max?: number; maxBytes?: number; pattern?: RegExp; patternHint?: string } = {}): string {
    if (typeof this.value !== "string") this.fail(`expected a string, got ${describe(this.value)}`);
    const s = this.value;
    if (opts.max !== undefined && s.length > opts.max) this.fail(`longer than ${opts.max} characters`);
    if (opts.maxBytes !== undefined && !fitsUtf8(s, opts.maxBytes)) this.fail(`longer than ${opts.maxBytes} bytes (UTF-8)`);
    if (opts.pattern && !opts.pattern.test(s)) this.fail(opts.patternHint ?? `does not match ${opts.pattern}`);
    return s;
  }

  optionalString(opts: { max?: number; maxBytes?: number; pattern?: RegExp; patternHint?: string } = {}): string | undefined {
    return this.value === undefined || this.value === null ? undefined : this.string(opts);
  }

  int(opts: { min?: number; max?: number } = {}): number {
    if (typeof this.value !== "number" || !Number.isSafeInteger(this.value)) this.fail(`expected an integer, got ${describe(this.value)}`);
    const n = this.value;
    if (opts.min !== undefined && n < opts.min) this.fail(`must be ≥ ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) this.fail(`must be ≤ ${opts.max}`);
    return n;
  }

  nullableInt(opts: { min?: number; max?: number } = {}): number | null {
    return this.value === null ? null : this.int(opts);
  }

  boolean(): boolean {
    if (typeof this.value !== "boolean") this.fail(`expected true or false, got ${describe(this.value)}`);
    return this.value;
  }

  oneOf<const T extends string>(choices: readonly T[]): T {
    const s = this.string();
    if (!(choices as readonly string[]).includes(s)) this.fail(`expected one of ${choices.join(", ")}, got ${JSON.stringify(s)}`);
    return s as T;
  }

  array(opts: { max?: number } = {}): Reader[] {
    if (!Array.isArray(this.value)) this.fail(`expected a list, got ${describe(this.value)}`);
    if (opts.max !== undefined && this.value.length > opts.max) this.fail(`more than ${opts.max} items`);
    return this.value.map((_, i) => this.child(i));
  }
}

export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
  return `${typeof value} ${String(value)}`;
}
