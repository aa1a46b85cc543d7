/**
 * The DO's one alarm, derived from the earliest deadline stored in SQL: a disconnected agent's
 * running job going stale, a look at whether a connected agent's socket still exists while it runs a
 * job (a worker restart drops sockets without a close event), a job whose rollout turn came while its
 * agent was offline, a running job past its timeout, a cancel the agent has not confirmed,
 * retention of finished jobs, deployments and delivery records, pruning agents unseen that long, and
 * the next report due in the outbox (report-outbox.ts; report-sending.ts sends them), and a released job an
 * idle connected agent has not been sent (the send after a webhook's answer is a timer: should the
 * DO go away before it fires, the alarm sends the job — see UNSENT_GRACE_MS), a deployment waiting at
 * its gates past their timeout, retention of CI conclusions, and a job sent to a connected agent that
 * has not accepted it (sent again a stale period after). handlers/deadlines.ts applies them.
 */
import type { AlarmSettings } from "./deadline-settings.ts";
import type { OwnJobChange } from "./handlers/target-context.ts";
import { UNSEEN_AGENTS } from "./agents/agent-tokens.ts";
import { nextReportDue } from "./reports/report-outbox.ts";
import { JOB_TIME_UP, WAITING_FOR_OFFLINE_AGENT, WAITING_SINCE } from "./jobs/jobs.ts";

/** How long a released job may sit unsent for an idle connected agent before the alarm sends it. */
export const UNSENT_GRACE_MS = 2000;

/** SQL condition on agent `a`: connected, and neither running a job nor holding one sent but not yet accepted. */
const IDLE_CONNECTED = `a.connected = 1 AND NOT EXISTS (SELECT 1 FROM jobs b WHERE b.agent = a.name
  AND (b.status = 'running' OR (b.status = 'queued' AND b.dispatched_at IS NOT NULL)))`;

/** Whether any of these agents is connected and idle: a job released for it goes out at once. */
export function anyIdleConnected(sql: SqlStorage, agents: readonly string[]): boolean {
  return agents.some((name) => sql.exec(`SELECT 1 FROM agents a WHERE a.name = ? AND ${IDLE_CONNECTED}`, name).toArray().length > 0);
}

/**
 * The jobs of connected agents waiting to go out, in one pass over the queued jobs (a fleet's rollout
 * queues hundreds): a released job not sent to an idle agent, UNSENT_GRACE_MS after its release (the
 * send after a webhook's answer is a timer; this is its net); and a job sent but not accepted, to an
 * agent running nothing, a stale period (the second parameter) after it was last sent (SENT_NOT_ACCEPTED
 * in jobs.ts: the agent could not take it). Its NOT EXISTS is IDLE_CONNECTED for the first, "runs
 * nothing" for the second.
 */
const DISPATCH = `(SELECT min(CASE WHEN j.dispatched_at IS NULL THEN j.released_at + ? ELSE j.dispatched_at + ? END)
  FROM jobs j JOIN agents a ON a.name = j.agent
  WHERE j.status = 'queued' AND j.released_at IS NOT NULL AND a.connected = 1
    AND NOT EXISTS (SELECT 1 FROM jobs b WHERE b.agent = a.name
      AND (b.status = 'running' OR (j.dispatched_at IS NULL AND b.status = 'queued' AND b.dispatched_at IS NOT NULL))))`;

/**
 * Each deadline's minimum over the rows that have one. The agents' deadlines go from their running jobs
 * (the jobs_status index: one row per running job) to the agent, not from every agent to its jobs: with
 * a fleet connected, every derivation read each agent twice (a 40-agent target: 80 rows for two minimums).
 */
function earliestDeadline(sql: SqlStorage, s: AlarmSettings): number | null {
  const row = sql
    .exec<{
      stale: number | null;
      waiting: number | null;
      check_socket: number | null;
      timeout: number | null;
      cancel: number | null;
      jobs: number | null;
      deliveries: number | null;
      deployments: number | null;
      unseen: number | null;
      dispatch: number | null;
      gates: number | null;
      conclusions: number | null;
    }>(
      `SELECT
         (SELECT min(a.disconnected_at) FROM jobs j JOIN agents a ON a.name = j.agent
            WHERE j.status = 'running' AND a.connected = 0 AND a.disconnected_at IS NOT NULL) AS stale,
         (SELECT min(${WAITING_SINCE}) FROM jobs j JOIN agents a ON a.name = j.agent WHERE ${WAITING_FOR_OFFLINE_AGENT}) AS waiting,
         (SELECT min(COALESCE(a.last_seen_at, a.connected_at)) FROM jobs j JOIN agents a ON a.name = j.agent
            WHERE j.status = 'running' AND a.connected = 1) AS check_socket,
         (SELECT min(${JOB_TIME_UP}) FROM jobs WHERE status = 'running') AS timeout,
         (SELECT min(cancel_requested_at) FROM jobs WHERE status = 'running' AND cancel_requested_at IS NOT NULL) AS cancel,
         (SELECT min(finished_at) FROM jobs WHERE finished_at IS NOT NULL) AS jobs,
         (SELECT min(created_at) FROM deliveries) AS deliveries,
         (SELECT min(finished_at) FROM deployments WHERE finished_at IS NOT NULL) AS deployments,
         (SELECT min(seen) FROM (${UNSEEN_AGENTS})) AS unseen,
         ${DISPATCH} AS dispatch,
         (SELECT min(wait_until) FROM deployments WHERE status = 'waiting') AS gates,
         (SELECT min(received_at) FROM conclusions) AS conclusions`,
      UNSENT_GRACE_MS,
      s.staleMs,
    )
    .one();
  const deadlines = [
    row.stale === null ? null : row.stale + s.staleMs,
    // A job whose turn came while its agent was offline holds up its rollout: it ends interrupted.
    row.waiting === null ? null : row.waiting + s.staleMs,
    // While a connected agent runs a job, look at least once a stale period whether its socket still
    // exists (a worker restart drops sockets without a close event; the alarm reconciles them).
    row.check_socket === null ? null : row.check_socket + s.staleMs,
    row.timeout === null ? null : row.timeout + s.jobGraceMs,
    row.cancel === null ? null : row.cancel + s.cancelGraceMs,
    row.jobs === null ? null : row.jobs + s.retentionMs,
    row.deliveries === null ? null : row.deliveries + s.retentionMs,
    row.deployments === null ? null : row.deployments + s.retentionMs,
    row.unseen === null ? null : row.unseen + s.retentionMs,
    // A released job not sent to an idle agent (the dispatch net), or one sent that it did not accept.
    row.dispatch,
    // A deployment waiting at its gates ends blocked at their timeout.
    row.gates,
    row.conclusions === null ? null : row.conclusions + s.retentionMs,
  ].filter((d): d is number => d !== null);
  return deadlines.length > 0 ? Math.min(...deadlines) : null;
}

/** When the alarm should fire: the earliest deadline in SQL (null: none). What scheduleAlarm sets; tests compare a kept alarm with it. */
export function derivedAlarm(sql: SqlStorage, s: AlarmSettings): number | null {
  const deadlines = [earliestDeadline(sql, s), nextReportDue(sql)].filter((d): d is number => d !== null);
  return deadlines.length > 0 ? Math.min(...deadlines) : null;
}

export async function scheduleAlarm(storage: DurableObjectStorage, s: AlarmSettings): Promise<void> {
  const deadline = derivedAlarm(storage.sql, s);
  const current = await storage.getAlarm();
  if (deadline === null) {
    if (current !== null) await storage.deleteAlarm();
  } else if (current !== deadline) {
    await storage.setAlarm(deadline);
  }
}

/** What a delivery that made jobs tells the alarm (receiveDelivery). */
export interface DeliveryAlarmFacts {
  /** Reports were queued with its deployments: they are due now. */
  reporting: boolean;
  /** A deployment over several hosts: its rollout may wait for an offline one (the stale deadline). */
  severalHosts: boolean;
  /** A deployment waiting at its gates: it ends blocked at their timeout. */
  gated?: boolean;
  /** The agents its jobs are for. */
  agents: readonly string[];
}

/**
 * The alarm after a delivery made jobs — the one entry point that does not always derive it in full,
 * since it is on the webhook's hot path (a push's answer waits for it):
 * - reports queued, a deployment over several hosts, or one waiting at its gates → derived in full ("derived");
 * - a job for an idle connected agent → only the dispatch net, UNSENT_GRACE_MS from now (the send after
 *   the answer is a timer: should the DO go away first, the alarm sends the job), unless the alarm is
 *   due sooner anyway ("net");
 * - otherwise (its agent offline or busy; a superseded job) its only new deadline is retention, far
 *   off: derived only when no alarm is due before it ("kept" when one is).
 */
export async function armAfterDelivery(storage: DurableObjectStorage, s: AlarmSettings, facts: DeliveryAlarmFacts, now: number): Promise<"derived" | "net" | "kept"> {
  if (facts.severalHosts || facts.reporting || facts.gated === true) {
    await scheduleAlarm(storage, s);
    return "derived";
  }
  const current = await storage.getAlarm();
  if (anyIdleConnected(storage.sql, facts.agents)) {
    if (current === null || current > now + UNSENT_GRACE_MS) await storage.setAlarm(now + UNSENT_GRACE_MS);
    return "net";
  }
  if (current !== null && current <= now + s.retentionMs) return "kept";
  await scheduleAlarm(storage, s);
  return "derived";
}

/**
 * The earliest deadline one agent's own job starting or ending can add (handlers/target-context.ts,
 * Changed.only): an end, the agent's next job going out (or one sent before going again), to be sent
 * again a stale period after now should the agent not accept it (SENT_NOT_ACCEPTED), and the finished
 * job's retention; a start, the job's time-up and grace, and the look at its agent's socket, a stale
 * period after now (its last_seen_at). Either removes deadlines too (a released job's wait for its
 * agent; a running job's timeout, socket look, cancel grace): those at worst leave the alarm early — it
 * fires, finds nothing due and is derived again (handlers/deadlines.ts). While a job runs the alarm is
 * due within a stale period (the socket look), so at its end it is nearly always kept.
 */
export function ownJobDeadlinesFrom(change: OwnJobChange, s: AlarmSettings, now: number): number {
  return change.kind === "job-ended" ? now + s.staleMs : Math.min(now + s.staleMs, change.timeUpAt + s.jobGraceMs);
}

/**
 * An alarm already due by `from` (no later than any deadline the change added) is kept ("kept"); none,
 * or a later one, is derived in full. Deriving reads the agents and the queued and running jobs — hundreds
 * of rows with a fleet connected — and a rollout's batch starts and ends ten jobs at once.
 */
export async function armUnlessSooner(storage: DurableObjectStorage, s: AlarmSettings, from: number): Promise<"derived" | "kept"> {
  const current = await storage.getAlarm();
  if (current !== null && current <= from) return "kept";
  await scheduleAlarm(storage, s);
  return "derived";
}
