/**
 * A loopback TCP proxy in front of the worker that can make the current connections go silent
 * (a half-open connection: nothing is closed, nothing gets through), as a dead NAT or a
 * suspended laptop would. New connections after that are forwarded normally.
 */
import { connect, createServer, type Socket } from "node:net";

export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  /** How many client connections have been accepted so far. */
  connections(): number;
  /** Stop forwarding on every connection open now, without closing any of them. */
  blackholeOpenConnections(): void;
  /** Stop reading what clients send (TCP back-pressure builds up on their side) until `resumeReading`. */
  pauseReading(): void;
  resumeReading(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let count = 0;
  const open = new Set<{ client: Socket; upstream: Socket; silent: boolean }>();
  const server = createServer((client) => {
    count++;
    const upstream = connect(targetPort, "127.0.0.1");
    const pair = { client, upstream, silent: false };
    open.add(pair);
    client.on("data", (d) => {
      if (!pair.silent) upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!pair.silent) client.write(d);
    });
    const end = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", () => (pair.silent ? open.delete(pair) : end()));
    upstream.on("close", () => (pair.silent ? undefined : end()));
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => count,
    blackholeOpenConnections() {
      for (const p of open) p.silent = true;
    },
    pauseReading() {
      for (const p of open) p.client.pause();
    },
    resumeReading() {
      for (const p of open) p.client.resume();
    },
    async close() {
      for (const p of open) {
        p.client.destroy();
        p.upstream.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}
