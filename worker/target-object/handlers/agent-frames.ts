/**
 * What the DO does with each frame an agent sends (docs/protocol.md). Every frame is validated
 * first; a bad one is answered with `error` and otherwise ignored. Nothing here sends a job or touches
 * the alarm: handleFrame returns what changed, and the DO shell (target.ts) does both after it.
 */
import { assertNever } from "../../../shared/assert-never.ts";
import { type AgentMessage, GATES_PROTOCOL_VERSION, parseAgentBinaryFrame, parseAgentMessage, PROTOCOL_VERSION, type WorkerMessage } from "../../../shared/protocol.ts";
import { logText } from "../../log-text.ts";
import { heardOnLiveConnection, isCurrentConnection, recordHello, recordRefusedHello } from "../agents/agents.ts";
import { type Attachment, CLOSE_LIMIT, CLOSE_REPLACED, sendError, sendFrame } from "../agents/connections.ts";
import { storeEvent } from "../jobs/events.ts";
import { type JobRow, jobStatusOf } from "../jobs/job-record.ts";
import { settledDeploymentStatus } from "../deployments/deployments.ts";
import { endJob, type JobEnd, startJob } from "../deployments/lifecycle.ts";
import { getJob, jobEndStored, refreshQueuedJobs, runningJobIds, undeclaredQueuedJobs } from "../jobs/jobs.ts";
import { declarationInvalid, declarationOverLimit } from "../agents/declaration-limits.ts";
import { keepWithinBudget } from "../jobs/log-budget.ts";
import { addNote } from "../jobs/notes.ts";
import type { Changed, TargetContext } from "./target-context.ts";
import { logInfo, logWarn } from "../../console-lines.ts";

/** A frame that changed nothing a send or a deadline depends on. */
const UNCHANGED = null;
/** A running job's events that change nothing a send or a deadline depends on (event, below). */
const STEP_KINDS: ReadonlySet<string> = new Set(["step-start", "output", "step-end"]);
/** State changed: released jobs go out and the alarm is re-derived (no agent's unaccepted job is re-sent). */
const CHANGED: Changed = { resend: [] };

/**
 * Handles one frame; returns what changed (target-context.ts) — null when the frame changed no state
 * (a bad frame, one before hello, an unknown job) or was a step's start, output or end in a job already
 * running: the hot path stays cheap, and every other frame, including kinds added later, gets the
 * shell's sends and alarm after it.
 */
export function handleFrame(s: TargetContext, ws: WebSocket, att: Attachment, frame: string | ArrayBuffer): Changed | null {
  // Binary frames are output events (protocol 3); everything else is JSON text.
  const parsed = typeof frame === "string" ? parseAgentMessage(frame) : parseAgentBinaryFrame(new Uint8Array(frame));
  if (!parsed.ok) {
    logWarn(`[agent ${att.agent}] bad frame: ${logText(parsed.error)}`);
    sendError(ws, "bad-frame", parsed.error);
    return UNCHANGED;
  }
  const msg = parsed.message;
  const sql = s.ctx.storage.sql;
  if (msg.type === "hello") return hello(s, ws, att, msg);
  if (!heardOnLiveConnection(sql, att.agent, att.connId, s.now)) {
    sendError(ws, "bad-frame", `send hello first (got ${msg.type})`);
    return UNCHANGED;
  }
  switch (msg.type) {
    case "accepted":
      return accepted(s, ws, att, msg.jobId);
    case "event":
      return event(s, ws, att, msg);
    case "error":
      logWarn(`[agent ${att.agent}] reported error ${logText(msg.code)}: ${logText(msg.message)}`);
      return CHANGED;
    default:
      return assertNever(msg, "agent message");
  }
}

/** The job if it exists and belongs to this agent; otherwise answers `error` and returns null. */
function ownJob(s: TargetContext, ws: WebSocket, att: Attachment, jobId: string): JobRow | null {
  const job = getJob(s.ctx.storage.sql, jobId);
  if (job && job.agent === att.agent) return job;
  sendError(ws, "unknown-job", `no job ${jobId} for agent ${att.agent} in target ${s.target}`);
  return null;
}

/** A refused hello changed nothing but the socket (closed); a taken one makes the agent idle: its unaccepted job goes again. */
function hello(s: TargetContext, ws: WebSocket, att: Attachment, msg: Extract<AgentMessage, { type: "hello" }>): Changed | null {
  const sql = s.ctx.storage.sql;
  if (msg.agent !== att.agent) {
    sendError(ws, "bad-frame", `hello.agent ${JSON.stringify(msg.agent)} does not match this connection's agent ${JSON.stringify(att.agent)}`);
    return CHANGED;
  }
  if (!isCurrentConnection(sql, att.agent, att.connId)) {
    // A hello still on its way when a newer socket of this agent opened: taken, it would make the
    // closing socket the live one, and the new socket's frames would be refused ("send hello first").
    logWarn(`[agent ${att.agent}] hello on a replaced connection refused`);
    sendError(ws, "replaced", `a newer connection of agent ${att.agent} replaced this one`);
    try {
      ws.close(CLOSE_REPLACED, "replaced by a newer connection");
    } catch {
      // usually closing already: the upgrade that replaced it closed it
    }
    return CHANGED;
  }
  if (msg.protocol !== PROTOCOL_VERSION && msg.protocol !== GATES_PROTOCOL_VERSION) {
    const fix = msg.protocol < PROTOCOL_VERSION ? "upgrade the agent to the release that matches this worker" : "deploy the worker that matches this agent";
    const why = `this worker speaks protocol ${PROTOCOL_VERSION} and agent ${att.agent} speaks ${msg.protocol} (version ${msg.version}): ${fix}`;
    logWarn(`[agent ${att.agent}] hello refused: ${logText(why)}`);
    recordRefusedHello(sql, att.agent, why, s.now);
    sendError(ws, "unsupported-protocol", why);
    ws.close(4002, "unsupported protocol");
    return CHANGED;
  }
  const invalid = declarationInvalid(msg.pipelines);
  if (invalid !== null) {
    logWarn(`[agent ${att.agent}] hello refused: ${logText(invalid)}`);
    recordRefusedHello(sql, att.agent, `invalid declaration: ${invalid}`, s.now);
    sendError(ws, "invalid-declaration", invalid);
    ws.close(CLOSE_LIMIT, "invalid declaration");
    return CHANGED;
  }
  const over = declarationOverLimit(msg.pipelines);
  if (over !== null) {
    logWarn(`[agent ${att.agent}] hello refused: ${over}`);
    recordRefusedHello(sql, att.agent, over, s.now);
    sendError(ws, "limit-exceeded", over);
    ws.close(CLOSE_LIMIT, "limit exceeded");
    return CHANGED;
  }
  const unfinished = new Map(msg.unfinished.map((u) => [u.jobId, u.lastSeq]));
  // Welcomed in the agent's own protocol (3, or 4 with gates): this worker speaks both.
  const toSend: WorkerMessage[] = [{ type: "welcome", protocol: msg.protocol, target: s.target, agent: att.agent }];
  s.ctx.storage.transactionSync(() => {
    recordHello(sql, { name: att.agent, version: msg.version, protocol: msg.protocol, pipelines: msg.pipelines, connId: att.connId, connectedAt: att.connectedAt, now: s.now });
    for (const [jobId, lastSeq] of unfinished) {
      const job = getJob(sql, jobId);
      if (!job || job.agent !== att.agent) {
        // Unknown here (e.g. past retention): let the agent drop its spool rather than re-send forever.
        logWarn(`[job ${jobId}] agent ${att.agent} reports it unfinished, but this target has no such job`);
        toSend.push({ type: "resume", jobId, ackedSeq: lastSeq });
        continue;
      }
      if (job.status === "queued") startJob(sql, job.id, s.now); // its `accepted` was lost
      if (job.status === "interrupted" && !jobEndStored(job)) {
        // Ended interrupted while its agent was away, and its deployment moved on (halted, failed, told
        // GitHub): an ended job stays ended. The agent is told to stop (below); its events are still kept.
        const dep = settledDeploymentStatus(sql, job.id);
        addNote(sql, job.id, `agent ${att.agent} came back running this job after it was ended interrupted: told to stop; it stays interrupted${dep ? ` and its deployment ${dep}` : ""}`, s.now);
      }
      toSend.push({ type: "resume", jobId, ackedSeq: job.acked_seq });
      // Cancel asked for, or the DO ended the job itself (canceled on its way, timed out, interrupted): the agent must stop it.
      const current = getJob(sql, job.id) ?? job;
      if (!jobEndStored(current) && (current.cancel_requested === 1 || (current.status !== "running" && current.status !== "queued"))) {
        toSend.push({ type: "cancel", jobId });
      }
    }
    for (const id of runningJobIds(sql, att.agent)) {
      if (unfinished.has(id)) continue;
      endJob(sql, id, "interrupted", s.now, `agent ${att.agent} reconnected without this job (it did not list it unfinished): ended interrupted`);
    }
    // After the loop above: a job the agent already took keeps the steps it runs.
    refreshQueuedJobs(sql, att.agent, msg.pipelines);
    // A pipeline the agent no longer declares: its jobs here never start (and a rollout goes on without it).
    for (const job of undeclaredQueuedJobs(sql, att.agent, msg.pipelines.map((p) => p.name))) {
      endJob(sql, job.id, "skipped", s.now, `agent ${att.agent} no longer declares pipeline ${job.pipeline}: ended skipped, nothing ran there`);
    }
  });
  for (const m of toSend) sendFrame(ws, m);
  logInfo(`[agent ${att.agent}] hello: version ${logText(msg.version)}, ${msg.pipelines.length} pipeline(s), ${unfinished.size} unfinished job(s)`);
  return { resend: [att.agent] };
}

/** What changed, as handleFrame says: a job started that is not its deployment's first changed only its own deadlines (Changed.only). */
function accepted(s: TargetContext, ws: WebSocket, att: Attachment, jobId: string): Changed {
  const sql = s.ctx.storage.sql;
  const job = ownJob(s, ws, att, jobId);
  if (!job) return CHANGED;
  if (job.status === "queued") {
    // (A cancel of a queued job ends it canceled at once, so a queued job has no cancel pending.)
    const started = startJob(sql, job.id, s.now);
    logInfo(`[job ${job.id}] accepted by ${att.agent}`);
    if (started === null || started.deploymentMoved) return CHANGED;
    // When it is up (JOB_TIME_UP in jobs.ts), counted from its start.
    const timeUpAt = (job.started_at ?? s.now) + job.timeout_ms * (job.has_on_failure === 1 ? 2 : 1);
    return { resend: [], only: { kind: "job-started", timeUpAt } };
  }
  // Canceled (or otherwise ended) while it was on its way: the agent must not keep running it.
  if (job.status !== "running") sendFrame(ws, { type: "cancel", jobId });
  return CHANGED;
}

/** What changed, as handleFrame says. */
function event(s: TargetContext, ws: WebSocket, att: Attachment, msg: Extract<AgentMessage, { type: "event" }>): Changed | null {
  const sql = s.ctx.storage.sql;
  const job = ownJob(s, ws, att, msg.jobId);
  if (!job) return UNCHANGED;
  let ended: JobEnd | null = null;
  // Events imply it was accepted. Started here, the job may start its deployment too (reported "running").
  const wasQueued = job.status === "queued";
  const outcome = s.ctx.storage.transactionSync(() => {
    // Read again only then: otherwise nothing wrote the row since ownJob read it.
    const fresh = wasQueued ? (startJob(sql, job.id, s.now), getJob(sql, job.id) ?? job) : job;
    const stored = storeEvent(sql, fresh, msg.seq, msg.at, msg.body, s.now, s.outputCaps);
    if (stored.kind !== "stored") return stored;
    // The agent's end of the job. A job the DO already ended (canceled while queued, or by a deadline:
    // interrupted, timed out, cancel not confirmed) stays as it is: its deployment moved on with that
    // end, and GitHub was told so (endJob ends only a queued or running job).
    if (msg.body.kind === "job-end") ended = endJob(sql, job.id, msg.body.status, s.now);
    keepWithinBudget(sql, s.logBudgetBytes, s.now); // the oldest finished jobs' logs go first
    return stored;
  });
  switch (outcome.kind) {
    case "stored":
    case "duplicate":
      sendFrame(ws, { type: "ack", jobId: job.id, seq: outcome.acked });
      break;
    case "not-stored":
      if (outcome.first) logWarn(`[job ${job.id}] output from seq ${msg.seq} on is past the job's log cap (${s.outputCaps.bytes} bytes, ${s.outputCaps.rows} rows): acked, counted, not stored`);
      sendFrame(ws, { type: "ack", jobId: job.id, seq: outcome.acked });
      break;
    case "refused":
      logWarn(`[job ${job.id}] refused: ${outcome.message}`);
      sendError(ws, outcome.code, outcome.message);
      sendFrame(ws, { type: "ack", jobId: job.id, seq: outcome.acked }); // why: events.ts, EventOutcome "refused"
      break;
    case "gap":
      logWarn(`[job ${job.id}] event seq ${msg.seq} after ${outcome.acked}: gap, not stored`);
      break;
    default:
      assertNever(outcome, "event outcome");
  }
  if (outcome.kind === "stored" && msg.body.kind === "job-end") {
    logInfo(`[job ${job.id}] ended ${msg.body.status} on ${att.agent}`);
    // The agent is idle now: also re-send a job that reached it while it was busy (it did not accept it).
    // A rollout's batch ends ten of these at once: all but its last leave the deployment as it was, and
    // skip the look for other agents' jobs and the alarm's derivation (target-context.ts, Changed.only) —
    // unless this event also started the job (its `accepted` lost), which may have started its deployment.
    const end = ended as JobEnd | null; // (assigned in the transaction's callback)
    return end !== null && !end.deploymentMoved && !wasQueued ? { resend: [att.agent], only: { kind: "job-ended" } } : { resend: [att.agent] };
  }
  // Within a running job, a step's start, output and end release no job and move no deadline: the job's
  // timeout counts from its start, and the look at its agent's socket (alarm.ts check_socket) only moves
  // later with the agent's last_seen_at, so the alarm already armed fires at worst early, finds nothing
  // due and is derived again. Measured: a fleet of 100 on one target spent most of a batch boundary
  // re-deriving the alarm and looking for jobs to send after every step frame (docs/performance.md, "Fleet").
  // Named, not "all but job-end": an event kind added later gets the shell's sends and alarm until it is shown not to need them.
  return STEP_KINDS.has(msg.body.kind) && job.status === "running" ? UNCHANGED : CHANGED;
}
