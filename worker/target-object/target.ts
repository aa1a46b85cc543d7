/**
 * The Target Durable Object: one per deploy target, the single writer of its jobs. SQLite is the
 * truth; nothing lives in instance fields, so hibernation and eviction lose nothing.
 *
 * Deadlines live in SQL and the one alarm is derived from them (alarm.ts). So that no path can leave
 * a deadline unarmed, this shell re-derives the alarm after every entry point that changes state —
 * socket open and close, each frame but a running job's output (session.ts says which), the alarm,
 * and the RPCs — rather than trusting each handler to remember.
 */
import { DurableObject } from "cloudflare:workers";
import { errorDetail } from "../../shared/errors.ts";
import { FINAL_JOB_STATUSES, HEARTBEAT_PING, HEARTBEAT_PONG } from "../../shared/protocol.ts";
import { NAME_HINT, NAME_PATTERN } from "../../shared/patterns.ts";
import { bearerToken } from "../http/bearer-auth.ts";
import { logText } from "../log-text.ts";
import { AGENT_TOKEN_REFUSED, insertToken, MAX_AGENTS_PER_TARGET, newToken, removeAgent, type Removed, replaceToken, sha256, tokenMatches } from "./agent-tokens.ts";
import { listAgentViews, recordDisconnect, recordNewConnection } from "./agents.ts";
import { alarmSettings, scheduleAlarm } from "./alarm.ts";
import {
  type Attachment,
  CLOSE_REPLACED,
  CLOSE_REVOKED,
  CLOSE_ROTATED,
  closeAgentSockets,
  completeClose,
  liveSocket,
  readAttachment,
  reconcileConnections,
  sendFrame,
} from "./connections.ts";
import { runDeadlines } from "./deadlines.ts";
import { acceptDelivery } from "./deliveries.ts";
import { dispatch, dispatchNext } from "./dispatch.ts";
import { jobStatusOf } from "./job-record.ts";
import { finishJob, getJob, jobView, listJobs } from "./jobs.ts";
import { type LogCursor, type LogPage, logStream, readLogPage } from "./log.ts";
import { type DeployRequest, type DeployResult, planDeploy, writeDeploy } from "./manual-deploy.ts";
import { migrate } from "./schema.ts";
import { handleFrame } from "./session.ts";
import type { AgentView, CancelResult, DeliveryAnswer, JobListItem, JobView, WebhookDelivery } from "./types.ts";

export type RegisterResult = { ok: true; name: string; token: string } | { ok: false; status: 409; error: string };
export type RevokeResult = ({ ok: true; name: string } & Removed) | { ok: false };

export class Target extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Heartbeats are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_PING, HEARTBEAT_PONG));
    ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage);
      // Waking after a restart: sockets that died with the old instance are gone without a close event.
      if (this.reconcile(Date.now()).length > 0) await this.reschedule();
    });
  }

  private get target(): string {
    return this.ctx.id.name ?? "default";
  }

  private reschedule(): Promise<void> {
    return scheduleAlarm(this.ctx.storage, alarmSettings(this.env));
  }

  /** The agent WebSocket upgrade: only the token registered for this agent name opens it. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "expected a WebSocket upgrade" }, { status: 426 });
    }
    const agent = new URL(request.url).searchParams.get("agent") ?? "";
    if (!NAME_PATTERN.test(agent)) return Response.json({ error: `agent name ${NAME_HINT}` }, { status: 400 });
    const given = bearerToken(request.headers.get("Authorization"));
    const hash = await sha256(given ?? "");
    // Read after the await: a rotation or revocation that landed meanwhile counts.
    if (given === null || !tokenMatches(this.ctx.storage.sql, agent, hash)) {
      console.warn(`[agent ${agent}] refused in target ${this.target}: ${AGENT_TOKEN_REFUSED}`);
      return Response.json({ error: AGENT_TOKEN_REFUSED }, { status: 401, headers: { "WWW-Authenticate": 'Bearer realm="hookrelay"' } });
    }

    const now = Date.now();
    for (const old of this.ctx.getWebSockets(agent)) {
      try {
        old.close(CLOSE_REPLACED, "replaced by a newer connection");
      } catch {
        // already closing
      }
    }
    const { 0: client, 1: server } = new WebSocketPair();
    const attachment: Attachment = { agent, connId: crypto.randomUUID(), connectedAt: now };
    this.ctx.acceptWebSocket(server, [agent]);
    server.serializeAttachment(attachment);
    // The live socket it replaces counts as gone from now: its running job's stale deadline starts,
    // whether or not this one ever says hello.
    recordNewConnection(this.ctx.storage.sql, agent, attachment.connId, now);
    await this.reschedule();
    console.log(`[agent ${agent}] connected to target ${this.target}`);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    try {
      const att = readAttachment(ws);
      if (!att) {
        ws.close(1011, "connection identity lost");
        return;
      }
      if (handleFrame({ ctx: this.ctx, target: this.target, now: Date.now() }, ws, att, message).rearm) await this.reschedule();
    } catch (e) {
      console.error(`[target ${this.target}] webSocketMessage failed: ${errorDetail(e)}`);
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      completeClose(ws, code, reason);
      await this.socketGone(ws, `closed ${code}${reason ? ` ${logText(reason)}` : ""}`);
    } catch (e) {
      console.error(`[target ${this.target}] webSocketClose failed: ${errorDetail(e)}`);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    try {
      await this.socketGone(ws, `error ${String(error)}`);
    } catch (e) {
      console.error(`[target ${this.target}] webSocketError failed: ${errorDetail(e)}`);
    }
  }

  private async socketGone(ws: WebSocket, why: string): Promise<void> {
    const att = readAttachment(ws);
    if (!att) return;
    if (recordDisconnect(this.ctx.storage.sql, att.agent, att.connId, Date.now())) {
      console.log(`[agent ${att.agent}] disconnected (${why})`);
      await this.reschedule();
    }
  }

  /** Agents the DO believed connected whose socket is gone are disconnected from now (connections.ts). */
  private reconcile(now: number): string[] {
    const gone = reconcileConnections(this.ctx, this.ctx.storage.sql, now);
    for (const agent of gone) console.log(`[agent ${agent}] disconnected (its socket is gone: the worker restarted)`);
    return gone;
  }

  override async alarm(): Promise<void> {
    const settings = alarmSettings(this.env);
    const now = Date.now();
    this.reconcile(now);
    runDeadlines(this.ctx, settings, now);
    await scheduleAlarm(this.ctx.storage, settings);
  }

  /** RPC: a verified push. Stores the jobs and the answer together, answers at once, then dispatches. */
  async receiveDelivery(d: WebhookDelivery): Promise<DeliveryAnswer> {
    const now = Date.now();
    const { answer, duplicate } = this.ctx.storage.transactionSync(() => acceptDelivery(this.ctx.storage.sql, d, now));
    if (duplicate) {
      console.log(`[delivery ${d.delivery}] seen before: same answer, no new job`);
      return answer;
    }
    if (answer.body.ignored) console.log(`[delivery ${d.delivery}] ignored: ${answer.body.ignored}`);
    // Sends are non-blocking: the answer does not wait for any agent. One log line per job.
    const sent = new Set<string>();
    for (const agent of new Set(answer.body.jobs.map((j) => j.agent))) {
      const id = dispatch(this.ctx, this.ctx.storage.sql, agent, { resend: false, now });
      if (id !== null) sent.add(id);
    }
    for (const job of answer.body.jobs) {
      console.log(`[delivery ${d.delivery}] [job ${job.id}] queued for ${job.agent}/${job.pipeline}${sent.has(job.id) ? ", sent" : ""}`);
    }
    // The hot path skips the SQL: new jobs are queued (no deadline yet), and a superseded one only
    // starts a retention deadline (now + retention), which matters only when no alarm comes before it.
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > now + alarmSettings(this.env).retentionMs) await this.reschedule();
    return answer;
  }

  /** RPC: POST …/deploy — queue the pipeline again (newest ref/sha unless given). */
  async deploy(req: DeployRequest): Promise<DeployResult> {
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    // Planned in full first, so a refusal for one agent leaves no job for another.
    const result = this.ctx.storage.transactionSync((): DeployResult => {
      const plan = planDeploy(sql, req);
      return plan.ok ? writeDeploy(sql, plan, now) : plan;
    });
    if (!result.ok) return result;
    for (const job of result.jobs) console.log(`[delivery ${result.delivery}] [job ${job.id}] deploy requested for ${job.agent}/${job.pipeline}`);
    for (const agent of new Set(result.jobs.map((j) => j.agent))) dispatchNext(this.ctx, sql, agent, { resend: false, now });
    await this.reschedule();
    return result;
  }

  /** RPC: POST …/agents — a new agent name and its token (shown once; only its hash is kept). */
  async registerAgent(name: string): Promise<RegisterResult> {
    const { token, hashHex } = await newToken();
    const outcome = this.ctx.storage.transactionSync(() => insertToken(this.ctx.storage.sql, name, hashHex, Date.now()));
    if (!outcome.ok) {
      const error =
        outcome.why === "exists"
          ? `agent ${name} is already registered in target ${this.target} (rotate its token with POST …/agents/${name}/token)`
          : `target ${this.target} has ${MAX_AGENTS_PER_TARGET} agents, the limit: revoke one first (DELETE …/agents/:name)`;
      return { ok: false, status: 409, error };
    }
    console.log(`[agent ${name}] registered in target ${this.target}`);
    await this.reschedule();
    return { ok: true, name, token };
  }

  /** RPC: POST …/agents/:name/token — a new token; the old one stops working and its socket is closed. Null: no such agent. */
  async rotateAgentToken(name: string): Promise<{ name: string; token: string } | null> {
    const { token, hashHex } = await newToken();
    const now = Date.now();
    if (!replaceToken(this.ctx.storage.sql, name, hashHex, now)) return null;
    this.closeSockets(name, CLOSE_ROTATED, "token rotated", now);
    console.log(`[agent ${name}] token rotated in target ${this.target}`);
    await this.reschedule();
    return { name, token };
  }

  /** RPC: DELETE …/agents/:name — token and row gone, socket closed, its unfinished jobs ended. */
  async revokeAgent(name: string): Promise<RevokeResult> {
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    const ws = liveSocket(this.ctx, sql, name);
    const removed = this.ctx.storage.transactionSync(() => removeAgent(sql, name, "was revoked", now));
    if (!removed) return { ok: false };
    if (ws) for (const id of removed.interrupted) sendFrame(ws, { type: "cancel", jobId: id });
    this.closeSockets(name, CLOSE_REVOKED, "agent revoked", now);
    console.log(`[agent ${name}] revoked in target ${this.target}: ${removed.canceled.length} queued job(s) canceled, ${removed.interrupted.length} running job(s) interrupted`);
    await this.reschedule();
    return { ok: true, name, ...removed };
  }

  /** Closes every socket of `name` and records the live one as gone now (its close event may never come). */
  private closeSockets(name: string, code: number, reason: string, now: number): void {
    for (const att of closeAgentSockets(this.ctx, name, code, reason)) recordDisconnect(this.ctx.storage.sql, name, att.connId, now);
  }

  async listAgents(): Promise<AgentView[]> {
    return listAgentViews(this.ctx.storage.sql);
  }

  async listJobs(limit: number): Promise<JobListItem[]> {
    return listJobs(this.ctx.storage.sql, limit);
  }

  async getJob(id: string): Promise<JobView | null> {
    return jobView(this.ctx.storage.sql, this.target, id);
  }

  /** RPC: the job's log (null if no such job); `step` → that step's raw output only. */
  async getJobLog(id: string, step: string | null): Promise<ReadableStream<Uint8Array> | null> {
    const job = getJob(this.ctx.storage.sql, id);
    if (!job) return null;
    return logStream(this.ctx.storage.sql, id, step, job.output_dropped);
  }

  /** RPC for `?follow=1`: the next page of the log after `after`, and whether the job has ended. */
  async getLogPage(id: string, step: string | null, after: LogCursor, atLineStart: boolean): Promise<(LogPage & { ended: boolean }) | null> {
    const sql = this.ctx.storage.sql;
    const job = getJob(sql, id);
    if (!job) return null;
    const page = readLogPage(sql, id, step, after, atLineStart);
    // A final status is final: the agent's job-end is in, or the DO ended the job itself (it never ran,
    // or a deadline passed — then the note saying so is in the page). A late event stays in the plain log.
    return { ...page, ended: FINAL_JOB_STATUSES.includes(jobStatusOf(job.status)) };
  }

  /**
   * RPC: a queued job is canceled here; a running one is asked to stop (now, or when its agent
   * reconnects), and ends canceled after the cancel grace if its agent never confirms (deadlines.ts).
   */
  async cancelJob(id: string): Promise<CancelResult> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    const job = getJob(sql, id);
    if (!job) return { outcome: "not-found" };
    const status = jobStatusOf(job.status);
    if (status === "queued") {
      this.ctx.storage.transactionSync(() => {
        sql.exec("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", id);
        finishJob(sql, id, "canceled", now);
      });
      console.log(`[job ${id}] canceled while queued`);
      await this.reschedule();
      // The agent's next job goes out now. If the canceled one was already on its way, the agent's
      // `accepted` gets a `cancel`, and a job it could not take meanwhile is re-sent after that job-end.
      dispatchNext(this.ctx, sql, job.agent, { resend: true, now });
      return { outcome: "canceled", id, status: "canceled" };
    }
    if (status !== "running") return { outcome: "already-finished", status };
    // A repeated cancel sends the frame again but keeps the first request's grace.
    sql.exec("UPDATE jobs SET cancel_requested = 1, cancel_requested_at = COALESCE(cancel_requested_at, ?) WHERE id = ?", now, id);
    await this.reschedule();
    const ws = liveSocket(this.ctx, sql, job.agent);
    const sent = ws !== null && sendFrame(ws, { type: "cancel", jobId: id });
    console.log(`[job ${id}] cancel requested${sent ? "" : ` (agent ${job.agent} offline: sent when it reconnects)`}`);
    return { outcome: "cancel-requested", id, status };
  }
}
