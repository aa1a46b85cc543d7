/**
 * One budget, per isolate, for the webhook bodies being read before their signature is checked.
 * Anyone can POST 25 MiB under a made-up signature, and such a body is held whole until it is
 * verified: a handful at once would pass a Workers isolate's 128 MB. Each read reserves what it will
 * hold (the declared Content-Length up front, then the buffer's actual size as it grows) and releases
 * it once the signature is judged or the read fails; past the budget the caller answers 503. Real
 * GitHub events are rarely over 1 MiB, so the budget is only met by large bodies at once.
 * Isolate memory is what is bounded, so the count lives in the isolate: it is request state that
 * dies with the isolate, as the memory it stands for does.
 */
export const UNVERIFIED_BUDGET_BYTES = 32 * 1024 * 1024;
/** What a 503 tells the sender: a read of a few MiB takes well under this. */
export const BUDGET_RETRY_AFTER_SECONDS = 5;

export interface BodyReservation {
  /** The budget's size, for the refusal's reason. */
  readonly limitBytes: number;
  /** Holds `totalBytes` for this body in all (never less than before); false when the budget has no room. */
  grow(totalBytes: number): boolean;
  /** Gives back everything held; idempotent. */
  release(): void;
}

export interface BodyBudget {
  readonly limitBytes: number;
  heldBytes(): number;
  reserve(): BodyReservation;
}

export function createBodyBudget(limitBytes: number): BodyBudget {
  let held = 0;
  return {
    limitBytes,
    heldBytes: () => held,
    reserve() {
      let mine = 0;
      return {
        limitBytes,
        grow(totalBytes) {
          if (totalBytes <= mine) return true;
          if (held + (totalBytes - mine) > limitBytes) return false;
          held += totalBytes - mine;
          mine = totalBytes;
          return true;
        },
        release() {
          held -= mine;
          mine = 0;
        },
      };
    },
  };
}

/** The isolate's budget for webhook bodies not verified yet. */
export const unverifiedBodies = createBodyBudget(UNVERIFIED_BUDGET_BYTES);
