/**
 * A loopback TCP proxy in front of the worker that misbehaves as the network between a server and
 * Cloudflare does:
 * - `blackholeOpenConnections`: the current connections go silent (nothing closed, nothing gets
 *   through), as a dead NAT or a suspended laptop would; new connections are forwarded normally;
 * - `partition` … `heal`: the same for every connection, open or new, until healed (new ones are
 *   accepted and hear nothing until the heal, then are forwarded with what they sent meanwhile, as a
 *   retransmitted SYN connects once the network is back; the ones open before stay silent);
 * - `reset`: every open connection is reset (TCP RST) on both sides, as a load balancer does.
 */
import { connect, createServer, type Socket } from "node:net";

export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  /** How many client connections have been accepted so far. */
  connections(): number;
  /** How many connections are open now (silent ones included). */
  openConnections(): number;
  /** Stop forwarding on every connection open now, without closing any of them. */
  blackholeOpenConnections(): void;
  /** Silence every connection, open now or accepted later, without closing any, until `heal`. */
  partition(): void;
  /** End a partition: connections opened during it and new ones are forwarded (the ones open before stay silent, as a NAT that forgot them). */
  heal(): void;
  readonly partitioned: boolean;
  /** RST both sides of every open connection; returns how many were reset. */
  reset(): number;
  /** Stop reading what clients send (TCP back-pressure builds up on their side) until `resumeReading`. */
  pauseReading(): void;
  resumeReading(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | null;
  silent: boolean;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let count = 0;
  let partitioned = false;
  const open = new Set<Pair>();
  /** Connections opened during the partition, forwarded when it heals. */
  const waiting = new Set<() => void>();
  const server = createServer((client) => {
    count++;
    const pair: Pair = { client, upstream: null, silent: partitioned };
    open.add(pair);
    client.on("error", () => {});
    if (pair.silent) {
      // Opened during a partition: nothing gets through until the heal, when it is forwarded with what
      // the client sent meanwhile — as a SYN retransmitted after the network came back connects.
      const held: Buffer[] = [];
      const hold = (d: Buffer) => held.push(d);
      client.on("data", hold);
      client.on("close", () => open.delete(pair));
      waiting.add(() => {
        if (client.destroyed) return;
        client.off("data", hold);
        pair.silent = false;
        forward(pair, held);
      });
      return;
    }
    forward(pair, []);
  });

  function forward(pair: Pair, held: Buffer[]): void {
    const client = pair.client;
    const upstream = connect(targetPort, "127.0.0.1");
    for (const d of held) upstream.write(d);
    pair.upstream = upstream;
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
    upstream.on("error", () => {});
  }
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => count,
    openConnections: () => open.size,
    blackholeOpenConnections() {
      for (const p of open) p.silent = true;
    },
    partition() {
      partitioned = true;
      for (const p of open) p.silent = true;
    },
    heal() {
      partitioned = false;
      for (const go of waiting) go();
      waiting.clear();
    },
    get partitioned() {
      return partitioned;
    },
    reset() {
      let n = 0;
      for (const p of [...open]) {
        open.delete(p);
        p.silent = true; // nothing more crosses while the sockets go
        p.client.resetAndDestroy();
        p.upstream?.resetAndDestroy();
        n++;
      }
      return n;
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
        p.upstream?.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}
