/**
 * A Target DO that cannot use its database's schema (schema.ts) answers every call with why, instead
 * of crash-looping. Its RPCs throw `TargetUnavailable`; only an error's message crosses RPC, so the
 * worker knows it by the message's shape (`target <name>: database schema …`) and answers 503.
 */
export class TargetUnavailable extends Error {
  override name = "TargetUnavailable";
}

export function schemaProblemMessage(target: string, problem: string): string {
  return `target ${target}: database schema ${problem}`;
}

const SHAPE = /^target [^\s:]+: database schema /;

/** The message to answer with (503) when `err` is a target's schema problem, else null. */
export function targetUnavailableMessage(err: unknown): string | null {
  return err instanceof Error && SHAPE.test(err.message) ? err.message : null;
}
