import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../app.ts";
import { eventually, postWebhook, pushPayload, uniqueName } from "../../testing/workerd/worker-support.ts";
import { UNVERIFIED_BUDGET_BYTES, unverifiedBodies } from "./body-budget.ts";

const MIB = 1024 * 1024;
const WRONG_SIGNATURE = { "Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": `sha256=${"0".repeat(64)}` };

/** A body sent 1 MiB a pull, counting what was pulled; `hold` keeps it open after `chunks` until released. */
function slowBody(chunks: number, hold = false) {
  let pulled = 0;
  let release!: (e?: Error) => void;
  const held = new Promise<Error | undefined>((resolve) => (release = resolve));
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (pulled >= chunks) {
          if (!hold) return controller.close();
          const e = await held;
          return e ? controller.error(e) : controller.close();
        }
        pulled += 1;
        controller.enqueue(new Uint8Array(MIB));
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled: () => pulled, release };
}

function post(body: ReadableStream<Uint8Array>, headers: Record<string, string> = {}) {
  return Promise.resolve(app.request(`/webhook/${uniqueName()}`, { method: "POST", headers: { ...WRONG_SIGNATURE, "X-GitHub-Delivery": crypto.randomUUID(), ...headers }, body }, env));
}

// Anyone can send 25 MiB with a made-up signature; bodies being read before their signature is checked
// share one budget per isolate, so a handful at once cannot take an isolate's 128 MB.
describe("POST /webhook: unverified bodies share a memory budget", () => {
  it("answers 503 with Retry-After past the budget, counts what is held, and releases it on every path", async () => {
    expect(UNVERIFIED_BUDGET_BYTES).toBe(32 * MIB);
    expect(unverifiedBodies.heldBytes()).toBe(0);

    // A: declares 20 MiB, sends 2 and stalls — it holds its declared 20 MiB while it is read.
    const a = slowBody(2, true);
    const answerA = post(a.stream, { "Content-Length": String(20 * MIB) });
    await eventually("A is being read", async () => a.pulled() >= 1, 2000, 5);
    expect(unverifiedBodies.heldBytes()).toBe(20 * MIB);

    // B declares 20 MiB more: refused before a byte is read.
    const b = slowBody(20);
    const answerB = await post(b.stream, { "Content-Length": String(20 * MIB) });
    expect(answerB.status).toBe(503);
    expect(Number(answerB.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(await answerB.json()).toMatchObject({ error: expect.stringContaining("busy") });
    expect(b.pulled()).toBe(0);

    // C declares nothing: counted as it is read, refused once it would pass the budget.
    const c = slowBody(20);
    const answerC = await post(c.stream);
    expect(answerC.status).toBe(503);
    expect(answerC.headers.get("Retry-After")).not.toBeNull();
    expect(c.pulled()).toBeLessThan(20);
    expect(unverifiedBodies.heldBytes()).toBe(20 * MIB); // C's bytes released, A's still held

    // A's sender goes away mid-body: its reservation is released too.
    a.release(new Error("client went away"));
    expect((await answerA).status).toBe(400);
    expect(unverifiedBodies.heldBytes()).toBe(0);

    // A body under the budget is read and judged by its signature; then a real push goes through.
    const d = slowBody(24);
    expect((await post(d.stream, { "Content-Length": String(24 * MIB) })).status).toBe(401);
    expect(unverifiedBodies.heldBytes()).toBe(0);
    expect((await postWebhook(uniqueName(), JSON.stringify(pushPayload()))).status).toBe(200);
    expect(unverifiedBodies.heldBytes()).toBe(0);
  });

  it("still answers 413 past 25 MiB, declared or streamed, and holds nothing after", async () => {
    expect((await post(slowBody(26).stream, { "Content-Length": String(25 * MIB + 1) })).status).toBe(413);
    expect((await post(slowBody(26).stream)).status).toBe(413);
    expect(unverifiedBodies.heldBytes()).toBe(0);
  });
});
