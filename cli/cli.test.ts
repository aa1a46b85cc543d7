/** The CLI's pieces that need no worker: where the config lives, ANSI stripping, the SSE reader, the agent's server URL and config. */
import { describe, expect, it } from "vitest";
import { sseEvents } from "./client.ts";
import { checkPipelineFlags } from "./commands.ts";
import { agentConfig, agentServer, installCommands } from "../shared/install-commands.ts";
import { parseConfig } from "../agent/common/config.ts";
import { main } from "./hookrelay.ts";
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

  it("agents add --repo/--workdir/--branch: a config the agent accepts as printed, nothing left to edit", () => {
    const yaml = agentConfig({ url: "https://hookrelay.me.workers.dev", target: "default", name: "web-1", ...checkPipelineFlags({ repo: "octo/app", workdir: "/srv/my app", branch: "refs/heads/release/*" }) });
    expect(yaml).not.toContain("edit");
    const parsed = parseConfig(yaml, "/etc/hookrelay/agent.yml");
    expect(parsed.ok, JSON.stringify(parsed)).toBe(true);
    if (parsed.ok) expect(parsed.config.pipelines[0]).toMatchObject({ repo: "octo/app", workdir: "/srv/my app", branches: ["release/*"] });
    // Without them: placeholders, marked to edit; the branch defaults to main.
    const template = agentConfig({ url: "https://h.workers.dev", target: "default", name: "web-1" });
    expect(template).toMatch(/repo: OWNER\/REPO +# edit/);
    expect(template).toContain('branches: ["main"]');
  });

  it("agents add refuses a bad --repo, --workdir or --branch, naming the flag and why (exit 2)", () => {
    const refused = (f: Parameters<typeof checkPipelineFlags>[0]) => {
      try {
        checkPipelineFlags(f);
      } catch (e) {
        return { message: (e as Error).message, code: (e as { code?: number }).code };
      }
      return null;
    };
    expect(refused({ repo: "app" })).toEqual({ message: expect.stringContaining("--repo must be OWNER/NAME"), code: 2 });
    expect(refused({ workdir: "srv/app" })?.message).toContain("--workdir must be an absolute path");
    expect(refused({ workdir: "/srv/app\nname: evil" })?.message).toContain("control characters");
    expect(refused({ workdir: "/srv/../etc" })?.message).toContain("without . or ..");
    expect(refused({ branch: "-main" })?.message).toContain("--branch must be a branch name");
    expect(refused({ branch: "a..b" })?.message).toContain("--branch");
    expect(refused({ repo: "octo/app", workdir: "/srv/app", branch: "main" })).toBeNull();
  });

  it("a bad flag of agents add is refused before the worker is needed (no URL, no token: still the flag's error)", async () => {
    const io = { out: () => {}, err: () => {}, tty: false };
    await expect(main(["agents", "add", "web-1", "--repo", "octo/app", "--workdir", "srv/app"], io, { HOME: "/nonexistent" })).rejects.toMatchObject({ code: 2, message: expect.stringContaining("--workdir must be an absolute path") });
    await expect(main(["agents", "add", "web-1", "--repo", "octo/app", "--workdir", "/srv/app"], io, { HOME: "/nonexistent" })).rejects.toMatchObject({ code: 1, message: expect.stringContaining("no worker URL") });
  });

  it("the printed block installs the bundle only if sha256sum -c passed, the service only if check passed; the token only in the environment", () => {
    const block = installCommands({ url: "https://h.workers.dev/", target: "default", name: "web-1", token: "hra_secret", repo: "octo/app", workdir: "/srv/app" });
    const fetchLine = block.split("\n").find((l) => l.includes("curl"))!;
    expect(fetchLine).toBe('(cd /tmp && curl -fsSLO "https://h.workers.dev/agent/hookrelay-agent.mjs{,.sha256}" && sha256sum -c hookrelay-agent.mjs.sha256 && install -m 0755 hookrelay-agent.mjs /usr/local/bin/hookrelay-agent)');
    const tokenLines = block.split("\n").filter((l) => l.includes("hra_secret"));
    expect(tokenLines).toEqual([" HOOKRELAY_AGENT_TOKEN='hra_secret' sh -c 'hookrelay-agent check --config /etc/hookrelay/agent.yml && hookrelay-agent install --config /etc/hookrelay/agent.yml'"]);
  });
});
