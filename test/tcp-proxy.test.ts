/** The soak's network faults, on real sockets: a partition silences open and new connections until healed; a reset RSTs both sides. */
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startTcpProxy, type TcpProxy } from "../testing/tcp-proxy.ts";
import { eventually } from "../dev/eventually.ts";

let echo: Server;
let proxy: TcpProxy;
const upstreamErrors: string[] = [];

async function startEcho(): Promise<number> {
  echo = createServer((s) => {
    s.on("error", (e: NodeJS.ErrnoException) => upstreamErrors.push(e.code ?? e.message));
    s.on("data", (d) => s.write(d));
  });
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
  return (echo.address() as { port: number }).port;
}

function client(port: number): Promise<{ socket: Socket; heard: () => string; error: () => string | null; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let heard = "";
    let error: string | null = null;
    let closed = false;
    const socket = connect(port, "127.0.0.1", () => resolve({ socket, heard: () => heard, error: () => error, closed: () => closed }));
    socket.on("data", (d) => (heard += d.toString()));
    socket.on("error", (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
      reject(e);
    });
    socket.on("close", () => (closed = true));
  });
}

afterEach(async () => {
  await proxy?.close();
  await new Promise((r) => echo?.close(r));
  upstreamErrors.length = 0;
});

describe("the soak's TCP proxy", () => {
  it("a partition silences open and new connections without closing them; the heal forwards the new ones, not the old", async () => {
    proxy = await startTcpProxy(await startEcho());
    const before = await client(proxy.port);
    before.socket.write("one");
    await eventually("the echo", async () => (before.heard() === "one" ? true : undefined), 5000, 20);

    proxy.partition();
    const during = await client(proxy.port);
    before.socket.write("two");
    during.socket.write("three");
    // A round trip through a fresh connection that is forwarded would take well under this; neither hears anything.
    const probe = await client((echo.address() as { port: number }).port);
    probe.socket.write("x");
    await eventually("a direct echo", async () => (probe.heard() === "x" ? true : undefined), 5000, 20);
    await new Promise((r) => setTimeout(r, 200));
    expect(before.heard()).toBe("one");
    expect(during.heard()).toBe("");
    expect(before.closed() || during.closed()).toBe(false);

    proxy.heal();
    // What the connection opened during the partition sent is delivered now (a retransmitted SYN connects).
    await eventually("the held echo after heal", async () => (during.heard() === "three" ? true : undefined), 5000, 20);
    const after = await client(proxy.port);
    after.socket.write("four");
    await eventually("the echo after heal", async () => (after.heard() === "four" ? true : undefined), 5000, 20);
    expect(before.heard()).toBe("one"); // the silenced connection stays silent, as a NAT that forgot it
    for (const c of [before, during, after, probe]) c.socket.destroy();
  });

  it("a reset RSTs the client (ECONNRESET) and the upstream side", async () => {
    proxy = await startTcpProxy(await startEcho());
    const c = await client(proxy.port);
    c.socket.write("hello");
    await eventually("the echo", async () => (c.heard() === "hello" ? true : undefined), 5000, 20);
    expect(proxy.reset()).toBe(1);
    await eventually("the client to see the reset", async () => (c.closed() ? true : undefined), 5000, 20);
    expect(c.error()).toBe("ECONNRESET");
    await eventually("the upstream to see the reset", async () => (upstreamErrors.includes("ECONNRESET") ? true : undefined), 5000, 20);
    expect(proxy.openConnections()).toBe(0);
  });
});
