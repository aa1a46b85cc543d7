import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "../shared/protocol.ts";
import { app } from "./app.ts";
import { connectAgent, hello, uniqueName } from "./test-support.ts";

describe("GET /agent", () => {
  it("answers 401 without the agent token, or with a wrong one", async () => {
    const target = uniqueName();
    for (const auth of [undefined, "Bearer nope", "Bearer test-agent-token-but-longer", "Basic test-agent-token"]) {
      const headers: Record<string, string> = { Upgrade: "websocket" };
      if (auth) headers.Authorization = auth;
      const res = await exports.default.fetch(`http://x/agent?target=${target}&agent=web-1`, { headers });
      expect(res.status, String(auth)).toBe(401);
      expect(res.webSocket).toBeNull();
    }
  });

  it("answers 500 naming AGENT_TOKEN when it is not configured", async () => {
    const res = await app.request(
      `/agent?target=t&agent=web-1`,
      { headers: { Upgrade: "websocket", Authorization: "Bearer x" } },
      { ...env, AGENT_TOKEN: undefined as unknown as string },
    );
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("AGENT_TOKEN");
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
