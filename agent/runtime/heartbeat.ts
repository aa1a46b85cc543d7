/**
 * Liveness of the agent's socket: send the text frame `ping` every interval; if nothing at all
 * arrived since the previous ping, the peer (or the path to it) is gone — a half-open TCP
 * connection never errors by itself — so report it dead. Detection takes at most two intervals.
 */
export interface HeartbeatOptions {
  intervalMs: number;
  sendPing(): void;
  onDead(): void;
}

export interface Heartbeat {
  /** Call for every frame received (a `pong` or anything else). */
  received(): void;
  stop(): void;
}

export function startHeartbeat(options: HeartbeatOptions): Heartbeat {
  let heardSincePing = true;
  const timer = setInterval(function heartbeatTick() {
    if (!heardSincePing) {
      clearInterval(timer);
      options.onDead();
      return;
    }
    heardSincePing = false;
    options.sendPing();
  }, options.intervalMs);
  timer.unref();
  return {
    received: () => {
      heardSincePing = true;
    },
    stop: () => clearInterval(timer),
  };
}
