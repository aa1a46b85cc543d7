/**
 * The agent's one outbound WebSocket to the worker, kept up for as long as the agent runs:
 * heartbeat (`ping` text frames; silence → terminate), reconnect with capped exponential backoff
 * and jitter, a long wait after the worker rejects the token (HTTP 401) — never a hot loop.
 * What travels over it is the caller's business (`onOpen`, `onFrame`).
 */
import WebSocket from "ws";
import { HEARTBEAT_PING, HEARTBEAT_PONG, MAX_INCOMING_FRAME_BYTES } from "../../shared/protocol.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { startHeartbeat } from "./heartbeat.ts";
import type { Logger } from "../common/logger.ts";
import { peerText } from "../common/peer-text.ts";
import { formatDuration } from "../common/units.ts";

export interface Link {
  readonly isOpen: boolean;
  readonly bufferedAmount: number;
  /**
   * Resolves once the frame is written to the socket (true) or the socket is gone (false): then
   * nothing holds the frame's bytes any more (the spool reuses their buffer). Bytes go as a binary frame.
   */
  send(frame: string | Uint8Array): Promise<boolean>;
}

export interface ConnectionOptions {
  server: string;
  target: string;
  agent: string;
  token: string;
  heartbeatMs: number;
  backoff: BackoffOptions;
  /** A connection that stayed up this long was healthy: the next failure retries quickly again. */
  healthyMs?: number;
  log: Logger;
  onOpen(link: Link): void;
  /** Every text frame other than the heartbeat's. */
  onFrame(text: string, link: Link): void;
  onClose(link: Link): void;
}

/** Close code the worker uses when a newer connection with the same agent name replaced this one. */
export const CLOSE_REPLACED = 4000;

export class Connection {
  private readonly o: ConnectionOptions;
  private readonly backoff: Backoff;
  private ws: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  /** Connection attempts so far (tests count them). */
  attempts = 0;

  constructor(options: ConnectionOptions) {
    this.o = options;
    this.backoff = new Backoff(options.backoff);
  }

  get url(): string {
    return `${this.o.server}/agent?target=${encodeURIComponent(this.o.target)}&agent=${encodeURIComponent(this.o.agent)}`;
  }

  start(): void {
    this.o.log.info(`connecting to ${this.url}`);
    this.connect();
  }

  /** Closes the socket and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => ws.terminate(), 2000);
      ws.once("close", () => {
        clearTimeout(force);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1001, "agent stopping");
    });
  }

  private connect(): void {
    if (this.stopped) return;
    this.attempts++;
    const ws = new WebSocket(this.url, {
      headers: { Authorization: `Bearer ${this.o.token}` },
      perMessageDeflate: false,
      // An all-zero masking key: ws then skips XOR-ing every byte sent (measured: ~30 ms of agent CPU per
      // 50 MB step). Masking keys guard proxies against scripts in a browser; this client is not one, and
      // its payloads are its own (RFC 6455 §10.3). The frames stay masked frames, as servers require.
      generateMask: (mask: Buffer) => void mask.fill(0),
      maxPayload: MAX_INCOMING_FRAME_BYTES,
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    let rejectedStatus: number | undefined;
    let openedAt: number | undefined;
    let lastError: string | undefined;
    const link: Link = {
      get isOpen() {
        return ws.readyState === WebSocket.OPEN;
      },
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
      send: (frame) =>
        new Promise<boolean>((resolve) => {
          if (ws.readyState !== WebSocket.OPEN) return resolve(false);
          ws.send(frame, { binary: typeof frame !== "string" }, (err) => resolve(!err));
        }),
    };

    ws.on("error", (err) => {
      lastError = peerText(err.message); // may quote what the server answered
    });
    ws.on("unexpected-response", (_req, res) => {
      rejectedStatus = res.statusCode;
      res.resume();
      ws.terminate();
    });
    const heartbeat = { received: () => {}, stop: () => {} };
    ws.on("open", () => {
      openedAt = performance.now(); // monotonic: a wall-clock step must not make a short connection look healthy
      this.o.log.info(`connected to ${this.o.server} (target ${this.o.target}, agent ${this.o.agent})`);
      Object.assign(
        heartbeat,
        startHeartbeat({
          intervalMs: this.o.heartbeatMs,
          sendPing: () => ws.send(HEARTBEAT_PING, () => {}),
          onDead: () => {
            this.o.log.warn(`no answer from the worker within ${formatDuration(this.o.heartbeatMs)}: dropping the connection`);
            ws.terminate();
          },
        }),
      );
      this.o.onOpen(link);
    });
    ws.on("message", (data, isBinary) => {
      heartbeat.received();
      const text = Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data as ArrayBuffer).toString("utf8");
      if (!isBinary && text === HEARTBEAT_PONG) return;
      if (!isBinary && text === HEARTBEAT_PING) {
        ws.send(HEARTBEAT_PONG, () => {});
        return;
      }
      this.o.onFrame(text, link);
    });
    ws.on("close", (code, reasonBuf) => {
      heartbeat.stop();
      if (this.ws === ws) this.ws = null;
      if (openedAt !== undefined) this.o.onClose(link);
      if (this.stopped) return;
      const reason = peerText(reasonBuf.toString()); // the peer's words: never a line break in our log
      let delay: number;
      if (rejectedStatus === 401 || rejectedStatus === 403) {
        delay = this.o.backoff.longMs;
        this.o.log.error(`token rejected by the worker (HTTP ${rejectedStatus}); check the agent token; retrying in ${formatDuration(delay)}`);
      } else if (code === CLOSE_REPLACED) {
        delay = this.o.backoff.longMs;
        this.o.log.error(`replaced by a newer connection with the same agent name ${this.o.agent} (is another agent using it?); retrying in ${formatDuration(delay)}`);
      } else {
        if (openedAt !== undefined && performance.now() - openedAt >= (this.o.healthyMs ?? 10_000)) this.backoff.reset();
        delay = this.backoff.next();
        const why =
          openedAt !== undefined
            ? `disconnected (code ${code}${reason ? ` ${reason}` : ""})`
            : `connection failed (${rejectedStatus !== undefined ? `HTTP ${rejectedStatus}` : (lastError ?? `code ${code}`)})`;
        this.o.log.warn(`${why}; reconnecting in ${delay}ms`);
      }
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }
}
