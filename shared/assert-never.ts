/** Exhaustiveness guard for `switch` over discriminated unions. */
export function assertNever(value: never, what = "value"): never {
  throw new TypeError(`hookrelay: unexpected ${what}: ${JSON.stringify(value)}`);
}
