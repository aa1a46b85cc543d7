/** The `agents` table: who connected, with which declared pipelines, and when last seen. */
import { type PipelineDecl, readRollout, type WaitForDecl } from "../../../shared/protocol.ts";
import { DEFAULT_ROLLOUT } from "../../../shared/rollout.ts";
import { Reader } from "../../../shared/reader.ts";
import { registeredNames } from "./agent-tokens.ts";
import { type AgentView, isoOrNull, type RunningJobRef } from "../types.ts";

const DEFAULT_DECLARED_TIMEOUT_MS = 30 * 60_000;

interface AgentRow extends Record<string, SqlStorageValue> {
  name: string;
  version: string;
  pipelines: string;
  connected: number;
  conn_id: string | null;
  connected_at: number | null;
  last_seen_at: number | null;
  disconnected_at: number | null;
  /** The protocol of its last accepted hello (null before 012-setup, or never welcomed). */
  protocol: number | null;
  refused_at: number | null;
  refused_reason: string | null;
}

/**
 * Declarations read, by their stored text: a fleet declares the same pipelines on every host, and each
 * push matches against every agent's declaration (deliveries.ts), so 100 agents meant 100 parses per push
 * where one does. Bounded by the texts' length (a declaration may be large: 50 pipelines of 50 globs),
 * the oldest entry going first; values are frozen: every caller shares them.
 */
const parsedDeclarations = new Map<string, readonly PipelineDecl[]>();
let parsedChars = 0;
export const MAX_PARSED_DECLARATION_CHARS = 2_000_000;

/** The length of the texts kept now (tests check the bound). */
export function parsedDeclarationChars(): number {
  return parsedChars;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Pipelines are stored as JSON we wrote ourselves; still read back through a Reader, never cast. The value is frozen and shared. */
export function readStoredPipelines(text: string): PipelineDecl[] {
  const known = parsedDeclarations.get(text);
  if (known) return known as PipelineDecl[];
  const parsed = deepFreeze(parseStoredPipelines(text));
  if (text.length > MAX_PARSED_DECLARATION_CHARS / 4) return parsed; // rare and large: not kept
  for (const [oldest] of parsedDeclarations) {
    if (parsedChars + text.length <= MAX_PARSED_DECLARATION_CHARS) break;
    parsedDeclarations.delete(oldest);
    parsedChars -= oldest.length;
  }
  parsedDeclarations.set(text, parsed);
  parsedChars += text.length;
  return parsed;
}

function parseStoredPipelines(text: string): PipelineDecl[] {
  const strings = (r: Reader) => r.array().map((s) => s.string());
  return new Reader(JSON.parse(text), "pipelines").array().map((p) => ({
    name: p.field("name").string(),
    repo: p.field("repo").string(),
    events: strings(p.field("events")),
    branches: strings(p.field("branches")),
    steps: strings(p.field("steps")),
    onFailure: strings(p.field("onFailure")),
    // Declared since protocol 2; a row written before that gets the agent's default (30 min) until its next hello.
    timeoutMs: p.has("timeoutMs") ? p.field("timeoutMs").int({ min: 1 }) : DEFAULT_DECLARED_TIMEOUT_MS,
    // Declared since deployments; a row written before gets the default (one host at a time, halt) until its next hello.
    rollout: p.has("rollout") ? readRollout(p.field("rollout")) : { ...DEFAULT_ROLLOUT },
    ...(p.has("environment") ? { environment: p.field("environment").string() } : {}),
    ...(p.has("environmentUrl") ? { environmentUrl: p.field("environmentUrl").string() } : {}),
    ...(p.has("productionEnvironment") ? { productionEnvironment: p.field("productionEnvironment").boolean() } : {}),
    ...(p.has("transientEnvironment") ? { transientEnvironment: p.field("transientEnvironment").boolean() } : {}),
    ...(p.has("tags") ? { tags: strings(p.field("tags")) } : {}),
    ...(p.has("paths") ? { paths: strings(p.field("paths")) } : {}),
    ...(p.has("pathsIgnore") ? { pathsIgnore: strings(p.field("pathsIgnore")) } : {}),
    ...(p.has("waitFor") ? { waitFor: readWaitFor(p.field("waitFor")) } : {}),
  }));
}

function readWaitFor(r: Reader): WaitForDecl {
  return {
    workflows: r.field("workflows").array().map((s) => s.string()),
    checks: r.field("checks").array().map((s) => s.string()),
    approval: r.field("approval").boolean(),
    timeoutMs: r.field("timeoutMs").int({ min: 1 }),
  };
}

export function getAgent(sql: SqlStorage, name: string): AgentRow | undefined {
  return sql.exec<AgentRow>("SELECT * FROM agents WHERE name = ?", name).toArray()[0];
}

export function listAgentRows(sql: SqlStorage): AgentRow[] {
  return sql.exec<AgentRow>("SELECT * FROM agents ORDER BY name").toArray();
}

export function toAgentView(row: AgentRow, runningJob: RunningJobRef | null = null): AgentView {
  return {
    name: row.name,
    connected: row.connected === 1,
    version: row.version,
    pipelines: readStoredPipelines(row.pipelines),
    connectedAt: isoOrNull(row.connected_at),
    lastSeenAt: isoOrNull(row.last_seen_at),
    disconnectedAt: row.connected === 1 ? null : isoOrNull(row.disconnected_at),
    runningJob,
  };
}

/** Each agent's running job (the earliest started, should there ever be two), by agent name. */
function runningJobsByAgent(sql: SqlStorage): Map<string, RunningJobRef> {
  const rows = sql
    .exec<{ agent: string; id: string; pipeline: string; deployment_id: string | null }>(
      "SELECT agent, id, pipeline, deployment_id FROM jobs WHERE status = 'running' ORDER BY started_at, created_at",
    )
    .toArray();
  const byAgent = new Map<string, RunningJobRef>();
  for (const r of rows) {
    if (!byAgent.has(r.agent)) byAgent.set(r.agent, { id: r.id, pipeline: r.pipeline, deployment: r.deployment_id });
  }
  return byAgent;
}

/** Agents that said hello, and those registered that have not yet (no version, no pipelines), by name. */
export function listAgentViews(sql: SqlStorage): AgentView[] {
  const running = runningJobsByAgent(sql);
  const seen = listAgentRows(sql).map((row) => toAgentView(row, running.get(row.name) ?? null));
  const known = new Set(seen.map((a) => a.name));
  const waiting = registeredNames(sql)
    .filter((name) => !known.has(name))
    .map(
      (name): AgentView => ({ name, connected: false, version: "", pipelines: [], connectedAt: null, lastSeenAt: null, disconnectedAt: null, runningJob: null }),
    );
  return [...seen, ...waiting].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A hello: the agent is connected on `connId` with these pipelines. */
export function recordHello(
  sql: SqlStorage,
  a: { name: string; version: string; protocol: number; pipelines: PipelineDecl[]; connId: string; connectedAt: number; now: number },
): void {
  sql.exec(
    `INSERT INTO agents (name, version, pipelines, connected, conn_id, connected_at, last_seen_at, disconnected_at, protocol)
     VALUES (?, ?, ?, 1, ?, ?, ?, NULL, ?)
     ON CONFLICT (name) DO UPDATE SET version = excluded.version, pipelines = excluded.pipelines, connected = 1,
       conn_id = excluded.conn_id, connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at,
       disconnected_at = NULL, protocol = excluded.protocol, refused_at = NULL, refused_reason = NULL`,
    a.name,
    a.version,
    JSON.stringify(a.pipelines),
    a.connId,
    a.connectedAt,
    a.now,
    a.protocol,
  );
}

/** A hello refused (its protocol, its declaration): kept on the agent's row for the setup page; cleared by the next accepted hello. */
export function recordRefusedHello(sql: SqlStorage, name: string, reason: string, now: number): void {
  sql.exec("UPDATE agents SET refused_at = ?, refused_reason = ? WHERE name = ?", now, reason.slice(0, 500), name);
}

/**
 * A new socket: it replaces the old one, and is not connected until its hello. Recorded for an agent
 * never seen before too (a row with no version, pipelines or times yet: listed as only registered), so that the newest socket is always
 * the one on record and only its hello is taken (isCurrentConnection).
 */
export function recordNewConnection(sql: SqlStorage, name: string, connId: string, now: number): void {
  sql.exec(
    `INSERT INTO agents (name, version, pipelines, connected, conn_id, connected_at, last_seen_at, disconnected_at)
     VALUES (?, '', '[]', 0, ?, NULL, NULL, NULL)
     ON CONFLICT (name) DO UPDATE SET conn_id = excluded.conn_id, connected = 0,
       disconnected_at = CASE WHEN agents.connected = 1 THEN ? ELSE agents.disconnected_at END`,
    name,
    connId,
    now,
  );
}

/** Whether `connId` is the agent's newest socket (live or not yet hello'd): a replaced one's frames, hello included, are refused. */
export function isCurrentConnection(sql: SqlStorage, name: string, connId: string): boolean {
  return getAgent(sql, name)?.conn_id === connId;
}

/** The current connection closed; returns whether it was the agent's live one. */
export function recordDisconnect(sql: SqlStorage, name: string, connId: string, now: number): boolean {
  const row = getAgent(sql, name);
  if (!row || row.conn_id !== connId || row.connected !== 1) return false;
  sql.exec("UPDATE agents SET connected = 0, disconnected_at = ?, last_seen_at = ? WHERE name = ?", now, now, name);
  return true;
}

export function touchAgent(sql: SqlStorage, name: string, now: number): void {
  sql.exec("UPDATE agents SET last_seen_at = ? WHERE name = ?", now, name);
}

/**
 * Whether frames from `connId` come from the agent's live, hello'd connection; if so, it was heard now
 * (touchAgent). One statement, on every frame an agent sends: not the whole row (its declaration too).
 */
export function heardOnLiveConnection(sql: SqlStorage, name: string, connId: string, now: number): boolean {
  return sql.exec("UPDATE agents SET last_seen_at = ? WHERE name = ? AND connected = 1 AND conn_id = ? RETURNING 1", now, name, connId).toArray().length > 0;
}

/** Agents the table says are connected. */
export function connectedAgentNames(sql: SqlStorage): string[] {
  return sql.exec<{ name: string }>("SELECT name FROM agents WHERE connected = 1").toArray().map((r) => r.name);
}

/** The agent's socket is gone without a close event: disconnected from now. */
export function markGone(sql: SqlStorage, name: string, now: number): void {
  sql.exec("UPDATE agents SET connected = 0, disconnected_at = ? WHERE name = ? AND connected = 1", now, name);
}
