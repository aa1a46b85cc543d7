/** The CLI's pieces that need no worker: where the config lives, ANSI stripping, the SSE reader, the agent's server URL. */
import { describe, expect, it } from "vitest";
import { sseEvents } from "./client.ts";
import { agentServer } from "./commands.ts";
import { stripAnsi, table } from "./output.ts";
import { configPath, connection } from "./settings.ts";

/** A response whose body arrives in these chunks. */
function chunked(...chunks: string[]): Response {
  const enc = new TextEncoder();
  return new Response(new ReadableStream({ start(c) { for (const x of chunks) c.enqueue(enc.encode(x)); c.close(); } }));
}

async function all(res: Response) {
  const out = [];
  for await (const e of sseEvents(res)) out.push(e);
  return out;
}

describe("the CLI's pieces", () => {
  it("config path: XDG_CONFIG_HOME when absolute, else ~/.config", () => {
    expect(configPath({ HOME: "/h", XDG_CONFIG_HOME: "/x" })).toBe("/x/hookrelay/config.json");
    expect(configPath({ HOME: "/h" })).toBe("/h/.config/hookrelay/config.json");
    expect(configPath({ HOME: "/h", XDG_CONFIG_HOME: "relative" })).toBe("/h/.config/hookrelay/config.json");
  });

  it("env wins over the config file, and says so", () => {
    const c = connection({ HOME: "/nonexistent", HOOKRELAY_URL: "https://w.example/", HOOKRELAY_ADMIN_TOKEN: "t" });
    expect(c).toEqual({ url: "https://w.example", urlSource: "environment variable HOOKRELAY_URL", token: "t", tokenSource: "environment variable HOOKRELAY_ADMIN_TOKEN" });
    expect(() => connection({ HOME: "/nonexistent", HOOKRELAY_URL: "https://w.example" })).toThrow("no admin token: run `hookrelay init` or set HOOKRELAY_ADMIN_TOKEN");
    expect(() => connection({ HOME: "/nonexistent", HOOKRELAY_URL: "ftp://w", HOOKRELAY_ADMIN_TOKEN: "t" })).toThrow(/must start with https:\/\//);
  });

  it("strips colours, cursor moves and OSC titles; keeps text, tabs, CR and newlines", () => {
    expect(stripAnsi("\x1b[1;32mok\x1b[0m\tdone\r\n\x1b]0;title\x07\x1b[2Kx\n")).toBe("ok\tdone\r\nx\n");
  });

  it("reads server-sent events split anywhere, with \\n, \\r\\n or \\r line ends", async () => {
    const events = await all(chunked("id: 1:0\nevent: log\nda", "ta: \"a\\r\\nb\"\n\n", "event: log\r\nid: 2:0\r\ndata: \"c\"\r", "\n\r\n: comment\n\nevent: end\ndata: {}\n\n"));
    expect(events).toEqual([
      { event: "log", data: '"a\\r\\nb"', id: "1:0" },
      { event: "log", data: '"c"', id: "2:0" },
      { event: "end", data: "{}", id: "2:0" },
    ]);
  });

  it("the agent's server is the worker's URL as ws(s)://", () => {
    expect(agentServer("https://hookrelay.me.workers.dev/")).toBe("wss://hookrelay.me.workers.dev");
    expect(agentServer("http://127.0.0.1:8787")).toBe("ws://127.0.0.1:8787");
  });

  it("tables pad every column but the last", () => {
    expect(table(["A", "BB"], [["xxx", "y"]])).toBe("A    BB\nxxx  y\n");
  });
});
