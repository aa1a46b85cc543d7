import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { PROTOCOL_VERSION } from "../shared/protocol.ts";
import { app } from "./app.ts";
import { flushLines } from "./console-lines.ts";
import { connectAgent, hello, registerAgent, uniqueName } from "../testing/workerd/worker-support.ts";

describe("GET /agent", () => {
  it("answers 401 without the agent token, or with a wrong one", async () => {
    const target = uniqueName();
    const token = await registerAgent(target, "web-1");
    for (const auth of [undefined, "Bearer nope", `Bearer ${token}-but-longer`, `Basic ${token}`, `Bearer ${token.slice(0, -1)}`]) {
      const headers: Record<string, string> = { Upgrade: "websocket" };
      if (auth) headers.Authorization = auth;
      const res = await exports.default.fetch(`http://x/agent?target=${target}&agent=web-1`, { headers });
      expect(res.status, String(auth)).toBe(401);
      expect(res.webSocket).toBeNull();
      expect(await res.json()).toEqual({ error: "missing or invalid agent token" });
    }
  });

  it("ignores a leftover shared AGENT_TOKEN secret: it opens nothing, and the worker says so once", async () => {
    const warn = vi.spyOn(console, "warn");
    try {
      const withShared = { ...env, AGENT_TOKEN: "the-old-shared-token" };
      for (let i = 0; i < 2; i++) {
        const res = await app.request(`/agent?target=${uniqueName()}&agent=web-1`, { headers: { Upgrade: "websocket", Authorization: "Bearer the-old-shared-token" } }, withShared);
        expect(res.status).toBe(401);
      }
      flushLines();
      const notes = warn.mock.calls.filter((args) => String(args[0]).includes("AGENT_TOKEN"));
      expect(notes).toHaveLength(1);
      expect(String(notes[0]![0])).toContain("ignored");
    } finally {
      warn.mockRestore();
    }
  });

  it("answers 426 when the request is not a WebSocket upgrade", async () => {
    const res = await exports.default.fetch(`http://x/agent?target=t&agent=web-1`, { headers: { Authorization: "Bearer test-agent-token" } });
    expect(res.status).toBe(426);
  });

  it("answers 400 for invalid target or agent names", async () => {
    for (const q of ["target=&agent=web-1", "target=ok&agent=-bad", "target=a%2Fb&agent=web-1"]) {
      const res = await exports.default.fetch(`http://x/agent?${q}`, { headers: { Upgrade: "websocket", Authorization: "Bearer test-agent-token" } });
      expect(res.status, q).toBe(400);
    }
  });

  it("upgrades with the right token and the DO answers hello with welcome", async () => {
    const target = uniqueName();
    const agent = await connectAgent(target, "web-1");
    agent.send(hello("web-1"));
    expect(await agent.next("welcome")).toEqual({ type: "welcome", protocol: PROTOCOL_VERSION, target, agent: "web-1" });
    agent.close();
  });
});
