/**
 * The Target Durable Object: one per deploy target, the single writer of its jobs. SQLite is the
 * truth; nothing lives in instance fields, so hibernation and eviction lose nothing.
 *
 * A thin shell over layers that import only downward (docs/architecture.md; scripts/check-layers.mjs
 * checks it): each runtime entry point hands off to a handler (handlers/: agent-upgrade.ts,
 * agent-frames.ts, deadlines.ts, job-calls.ts, deployment-calls.ts, agent-calls.ts), which works on the
 * aggregates (deployments/ → reports/, jobs/ → agents/) and returns what it changed. This shell is
 * the one place that then sends jobs (sendJobs) and arms the alarm (alarm.ts derives it from the
 * deadlines in SQL), so no handler has to remember either. One exception, on the webhook's hot path:
 * after `receiveDelivery` the jobs go out on a timer once the answer has left, and the alarm is armed
 * by `armAfterDelivery` (alarm.ts), which derives it in full only when the delivery may have made a
 * deadline other than its own dispatch net.
 */
import { DurableObject } from "cloudflare:workers";
import { errorDetail } from "../../shared/errors.ts";
import { HEARTBEAT_PING, HEARTBEAT_PONG } from "../../shared/protocol.ts";
import { logText } from "../log-text.ts";
import { registerAgent, type RegisterResult, revokeAgent, type RevokeResult, rotateAgentToken, type RotateResult } from "./handlers/agent-calls.ts";
import { openAgentSocket } from "./handlers/agent-upgrade.ts";
import { listAgentViews } from "./agents/agents.ts";
import { armAfterDelivery, armUnlessSooner, ownJobDeadlinesFrom, scheduleAlarm } from "./alarm.ts";
import { alarmSettings } from "./deadline-settings.ts";
import { completeClose, readAttachment, reconcileConnections, socketGone } from "./agents/connections.ts";
import { runDeadlines } from "./handlers/deadlines.ts";
import { cancelDeployment, decideApproval } from "./handlers/deployment-calls.ts";
import { anyWaiting, deploymentView, listDeployments } from "./deployments/deployments.ts";
import { agentsWithUnsentJobs, sendNextJob } from "./jobs/dispatch.ts";
import { noteDelivery, setupView, type SetupView } from "./handlers/setup-calls.ts";
import type { SeenDelivery } from "./deployments/github-events.ts";
import { cancelJob, deploy, jobLog, logDeliverySent, logPage, receiveConclusion, receiveDelivery } from "./handlers/job-calls.ts";
import { jobView, listJobs } from "./jobs/jobs.ts";
import type { LogCursor, LogPage } from "./jobs/log-reader.ts";
import { outputCaps } from "./jobs/events.ts";
import { logBudgetBytes, logStorageView, type LogStorageView } from "./jobs/log-budget.ts";
import type { DeployRequest, DeployResult } from "./deployments/manual-deploy.ts";
import { recordReportSetup } from "./reports/report-outbox.ts";
import { sendDueReports } from "./reports/report-sending.ts";
import { reportWiring, type ReportWiring } from "./reports/report-wiring.ts";
import { migrate } from "./schema.ts";
import { handleFrame } from "./handlers/agent-frames.ts";
import type { Changed, Handled, TargetContext } from "./handlers/target-context.ts";
import { schemaProblemMessage, TargetUnavailable } from "./target-unavailable.ts";
import type {
  AgentView,
  ApprovalResult,
  ConclusionDelivery,
  CancelResult,
  DeliveryAnswer,
  DeploymentCancelResult,
  DeploymentListItem,
  DeploymentView,
  JobListItem,
  JobView,
  WebhookDelivery,
} from "./types.ts";
import { logError, logInfo } from "../console-lines.ts";

/**
 * How long after the answer's rows are confirmed on disk (`storage.sync()`) the jobs go out: the
 * output gate lets the answer go at that moment, and in these few milliseconds it crosses back to the
 * worker and out. Counted from the confirmation, not from the RPC's return, so a slow commit no
 * longer eats the delay. Measured (idle agent, 60 pushes per run, two runs each, `wrangler dev` on 2
 * cores, local trace store off): counted from the return, 5 ms → answer healthz + 6.3–8.3 ms, first
 * step 43.9–45.9 ms; from the confirmation, 1 ms → + 5.9–7.1, 39.0–41.6 ms; 4 ms → + 4.3–5.3,
 * 38.8–39.0 ms; 8 ms → + 4.3–4.6, 42.1–43.4 ms; 12 ms → + 3.7–5.5, 46.5–50.9 ms. Sent sooner, the
 * job's frame and the agent's `accepted` cross wrangler's proxy with the answer.
 */
export const DISPATCH_DELAY_MS = 4;

export class Target extends DurableObject<Env> {
  /**
   * Reporting channels from the worker's secrets (report-wiring.ts); the setup is recorded for the SQL
   * that queues reports. Set in the constructor's `blockConcurrencyWhile`, which no event precedes.
   */
  private reports!: ReportWiring;
  /** Set when the schema cannot be used (schema.ts): every entry point answers it, nothing touches the tables. */
  private schemaProblem: string | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.traceEntry("constructed");
    // Heartbeats are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_PING, HEARTBEAT_PONG));
    ctx.blockConcurrencyWhile(async () => {
      this.reports = await reportWiring(env, ctx.id.name ?? "default");
      // Never thrown from here: that would reset the object on every request (a crash loop).
      const schema = migrate(ctx.storage);
      if (!schema.ok) {
        this.schemaProblem = schemaProblemMessage(this.target, schema.problem);
        logError(`[target ${this.target}] ${this.schemaProblem}: every call answers 503 until the code or the database is fixed`);
        return;
      }
      if (schema.applied.length > 0) logInfo(`[target ${this.target}] schema: applied ${schema.applied.join(", ")}`);
      recordReportSetup(ctx.storage.sql, this.reports.setup);
      // Waking: after a restart, sockets that died with the old instance are gone without a close event;
      // after hibernating, the sockets are still there, and only the alarm's look says whether they are heard.
      if (reconcileConnections(ctx, ctx.storage.sql, Date.now()).length > 0) await this.reschedule();
    });
  }

  private get target(): string {
    return this.ctx.id.name ?? "default";
  }

  /**
   * With the var TRACE_DO_ENTRIES=true (benchmarks only: `npm run bench:fleet` counts an idle fleet's
   * wake-ups with it), one line per time the runtime runs this object's code: constructed, an agent
   * socket's upgrade, frame, close or error, the alarm, an RPC. A heartbeat the runtime answers itself
   * (setWebSocketAutoResponse) runs none of it and writes no line. A comma-separated list of entries
   * traces only those (the soak: `constructed`, each time the object is built). Unset: nothing.
   */
  private traceEntry(entry: string): void {
    const trace = (this.env as { TRACE_DO_ENTRIES?: string }).TRACE_DO_ENTRIES;
    if (trace === undefined || trace === "") return;
    if (trace === "true" || trace.split(",").some((e) => e.trim() === entry)) logInfo(`[target ${this.target}] do-entry ${entry}`);
  }

  /** The vars a frame's handling reads, parsed once for this instance (an env does not change while it lives). */
  private limits: Pick<TargetContext, "logBudgetBytes" | "outputCaps"> | null = null;

  private context(): TargetContext {
    this.limits ??= { logBudgetBytes: logBudgetBytes(this.env), outputCaps: outputCaps(this.env) };
    return { ctx: this.ctx, target: this.target, now: Date.now(), ...this.limits };
  }

  /** For RPCs: throws the schema problem (the worker answers 503 with its message). */
  private usable(): void {
    this.traceEntry("rpc");
    if (this.schemaProblem !== null) throw new TargetUnavailable(this.schemaProblem);
  }

  private reschedule(): Promise<void> {
    return scheduleAlarm(this.ctx.storage, alarmSettings(this.env));
  }

  /**
   * The one place jobs go out: each agent in `resend` its next job, re-sending one sent but not
   * accepted (it is idle as far as the DO knows), then every idle connected agent its released job (a
   * rollout's next batch, a job of an agent that just came back) — unless `onlyResend` (one agent's job
   * started or ended, and nothing was released: Changed.only). Returns the jobs sent.
   */
  private sendJobs(resend: readonly string[], now: number, onlyResend = false): { id: string; agent: string }[] {
    const sql = this.ctx.storage.sql;
    const sent: { id: string; agent: string }[] = [];
    for (const agent of new Set(resend)) {
      const id = sendNextJob(this.ctx, sql, agent, { resend: true, now });
      if (id !== null) sent.push({ id, agent });
    }
    if (onlyResend) return sent;
    for (const agent of agentsWithUnsentJobs(sql)) {
      const id = sendNextJob(this.ctx, sql, agent, { resend: false, now });
      if (id !== null) sent.push({ id, agent });
    }
    return sent;
  }

  /**
   * After a handler changed state: the jobs it released go out, and the alarm is re-derived — or, when
   * all that changed is one agent's own job starting or ending (Changed.only), that agent's next job goes
   * out and an alarm due before anything the change added is kept.
   */
  private async afterChange(changed: Changed | null): Promise<void> {
    if (changed === null) return;
    const now = Date.now();
    const only = changed.only;
    for (const { id, agent } of this.sendJobs(changed.resend, now, only !== undefined)) logInfo(`[job ${id}] sent to ${agent}`);
    if (only === undefined) return this.reschedule();
    const settings = alarmSettings(this.env);
    await armUnlessSooner(this.ctx.storage, settings, ownJobDeadlinesFrom(only, settings, now));
  }

  /** An RPC handler's answer, once the shell has done what its change asks. */
  private async answer<T>(handled: Handled<T>): Promise<T> {
    await this.afterChange(handled.changed);
    return handled.result;
  }

  /** The agent WebSocket upgrade (agent-upgrade.ts). */
  override async fetch(request: Request): Promise<Response> {
    this.traceEntry("fetch");
    if (this.schemaProblem !== null) return Response.json({ error: this.schemaProblem }, { status: 503 });
    const { response, opened } = await openAgentSocket(this.ctx, this.target, request);
    if (opened) await this.reschedule();
    return response;
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.traceEntry("webSocketMessage");
    try {
      if (this.schemaProblem !== null) {
        ws.close(1011, "target unavailable: database schema");
        return;
      }
      const att = readAttachment(ws);
      if (!att) {
        ws.close(1011, "connection identity lost");
        return;
      }
      await this.afterChange(handleFrame(this.context(), ws, att, message));
    } catch (e) {
      logError(`[target ${this.target}] webSocketMessage failed: ${errorDetail(e)}`);
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.traceEntry("webSocketClose");
    try {
      completeClose(ws, code, reason);
      if (this.schemaProblem !== null) return;
      if (socketGone(this.ctx.storage.sql, ws, `closed ${code}${reason ? ` ${logText(reason)}` : ""}`, Date.now())) await this.reschedule();
    } catch (e) {
      logError(`[target ${this.target}] webSocketClose failed: ${errorDetail(e)}`);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.traceEntry("webSocketError");
    try {
      if (this.schemaProblem !== null) return;
      if (socketGone(this.ctx.storage.sql, ws, `error ${String(error)}`, Date.now())) await this.reschedule();
    } catch (e) {
      logError(`[target ${this.target}] webSocketError failed: ${errorDetail(e)}`);
    }
  }

  override async alarm(): Promise<void> {
    this.traceEntry("alarm");
    if (this.schemaProblem !== null) {
      logError(`[target ${this.target}] alarm skipped: ${this.schemaProblem}`);
      return;
    }
    const settings = alarmSettings(this.env);
    const now = Date.now();
    reconcileConnections(this.ctx, this.ctx.storage.sql, now, settings.staleMs);
    const changed = runDeadlines(this.ctx, settings, now);
    for (const { id, agent } of this.sendJobs(changed.resend, now)) logInfo(`[job ${id}] sent to ${agent}`);
    // Reports go out after everything else, for a bounded time (report-sending.ts): the ones left are
    // still due, so the alarm re-derived below fires again at once and runs deadlines before them.
    await sendDueReports(this.ctx.storage.sql, this.reports.senderFor, this.reports.backoffMs);
    await scheduleAlarm(this.ctx.storage, settings);
  }

  /**
   * RPC: a verified push. Stores the jobs and the answer together and answers; the jobs go out on a
   * timer after the answer has left (sendJobs), so GitHub's answer never waits for a send, an agent's
   * `accepted`, or the events that follow it. The alarm is the net under that timer.
   */
  async receiveDelivery(d: WebhookDelivery): Promise<DeliveryAnswer> {
    this.usable();
    const c = this.context();
    const { answer, created } = receiveDelivery(c, d);
    if (!created) return answer;
    await armAfterDelivery(this.ctx.storage, alarmSettings(this.env), {
      reporting: this.reports.setup.github.state === "on" || this.reports.setup.notify.state === "on",
      severalHosts: answer.body.deployments?.some((d) => d.jobs.length > 1) ?? false,
      gated: anyWaiting(this.ctx.storage.sql, (answer.body.deployments ?? []).map((d) => d.id)),
      agents: [...new Set(answer.body.jobs.map((j) => j.agent))],
    }, c.now);
    if (answer.body.jobs.length > 0) this.sendAfterAnswer(d.delivery, answer);
    return answer;
  }

  /**
   * After an answer whose rows released jobs (a push; a CI conclusion that opened a gate): they go out
   * DISPATCH_DELAY_MS after the rows are confirmed on disk (`storage.sync()`), so the answer never
   * waits for a send, an agent's `accepted`, or the events that follow it. The alarm is the net.
   */
  private sendAfterAnswer(delivery: string, answer: DeliveryAnswer): void {
    const send = () => {
      try {
        const sent = this.sendJobs([], Date.now());
        const ours = new Set(answer.body.jobs.map((j) => j.id));
        logDeliverySent(delivery, answer, new Set(sent.map((j) => j.id)));
        for (const { id, agent } of sent) if (!ours.has(id)) logInfo(`[job ${id}] sent to ${agent}`);
      } catch (e) {
        logError(`[delivery ${delivery}] sending its jobs failed (the alarm sends them): ${errorDetail(e)}`);
      }
    };
    // Not awaited: the answer never waits for this. A failed sync resets the DO; the alarm then sends.
    this.ctx.storage.sync().then(
      () => setTimeout(send, DISPATCH_DELAY_MS),
      (e: unknown) => logError(`[delivery ${delivery}] its rows were not confirmed (the alarm sends its jobs): ${errorDetail(e)}`),
    );
  }

  /**
   * RPC: a CI run's conclusion (workflow_run, check_run): the gates it decides (job-calls.ts). As after
   * a push, the jobs it released go out after the answer (sendAfterAnswer); the alarm is derived first
   * (a gate's timeout went, a released job's dispatch net came).
   */
  async receiveConclusion(d: ConclusionDelivery): Promise<DeliveryAnswer> {
    this.usable();
    const { result, changed } = receiveConclusion(this.context(), d);
    if (changed === null) return result;
    await this.reschedule();
    this.sendAfterAnswer(d.delivery, result);
    return result;
  }

  /** RPC: POST …/deployments/:id/approve and …/reject (deployment-calls.ts). */
  async decideApproval(id: string, approve: boolean, note: string | null): Promise<ApprovalResult> {
    this.usable();
    return this.answer(decideApproval(this.context(), id, approve, note));
  }

  /** RPC: POST …/deploy (job-calls.ts). */
  async deploy(req: DeployRequest): Promise<DeployResult> {
    this.usable();
    return this.answer(deploy(this.context(), req));
  }

  /** RPC: POST …/jobs/:id/cancel (job-calls.ts). */
  async cancelJob(id: string): Promise<CancelResult> {
    this.usable();
    return this.answer(cancelJob(this.context(), id));
  }

  /** RPC: POST …/deployments/:id/cancel (deployment-calls.ts). */
  async cancelDeployment(id: string): Promise<DeploymentCancelResult> {
    this.usable();
    return this.answer(cancelDeployment(this.context(), id));
  }

  async listDeployments(limit: number): Promise<DeploymentListItem[]> {
    this.usable();
    return listDeployments(this.ctx.storage.sql, this.target, limit);
  }

  async getDeployment(id: string): Promise<DeploymentView | null> {
    this.usable();
    return deploymentView(this.ctx.storage.sql, this.target, id);
  }

  /** RPC: POST …/agents (agent-calls.ts). */
  async registerAgent(name: string): Promise<RegisterResult> {
    this.usable();
    return this.answer(await registerAgent(this.ctx, this.target, name));
  }

  /** RPC: POST …/agents/:name/token (agent-calls.ts). */
  async rotateAgentToken(name: string): Promise<RotateResult> {
    this.usable();
    return this.answer(await rotateAgentToken(this.ctx, this.target, name));
  }

  /** RPC: DELETE …/agents/:name (agent-calls.ts). */
  async revokeAgent(name: string): Promise<RevokeResult> {
    this.usable();
    return this.answer(revokeAgent(this.context(), name));
  }

  /** RPC: GET …/setup — what the setup page checks (setup-calls.ts). */
  async getSetup(): Promise<SetupView> {
    this.usable();
    return setupView(this.context(), this.reports.setup);
  }

  /** RPC: a delivery the worker answered without the DO (ping, an event not deployed, a refused signature), for the setup page. */
  async noteDelivery(d: SeenDelivery & { refused: boolean }): Promise<void> {
    this.usable();
    noteDelivery(this.context(), d);
  }

  async listAgents(): Promise<AgentView[]> {
    this.usable();
    return listAgentViews(this.ctx.storage.sql);
  }

  async listJobs(limit: number): Promise<JobListItem[]> {
    this.usable();
    return listJobs(this.ctx.storage.sql, limit);
  }

  async getJob(id: string): Promise<JobView | null> {
    this.usable();
    return jobView(this.ctx.storage.sql, this.target, id);
  }

  /** RPC: the job's log (null if no such job); `step` → that step's raw output only. */
  async getJobLog(id: string, step: string | null): Promise<ReadableStream<Uint8Array> | null> {
    this.usable();
    return jobLog(this.ctx.storage.sql, id, step);
  }

  /** RPC: GET …/storage — stored log bytes and rows against the budget (log-budget.ts). */
  async getLogStorage(): Promise<LogStorageView> {
    this.usable();
    return logStorageView(this.ctx.storage.sql, this.target, logBudgetBytes(this.env));
  }

  /** RPC for `?follow=1`: the next page of the log after `after`, and whether the job has ended. */
  async getLogPage(id: string, step: string | null, after: LogCursor, atLineStart: boolean): Promise<(LogPage & { ended: boolean }) | null> {
    this.usable();
    return logPage(this.ctx.storage.sql, id, step, after, atLineStart);
  }
}
