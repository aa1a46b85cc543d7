/**
 * The CLI's commands on the admin API (docs/operations.md "API reference"): agents, deploy, status,
 * logs, approve and reject. Each prints for a person, or with `--json` the API's own answer.
 */
import { Client } from "./client.ts";
import { AGENT_CONFIG_PATH, agentServer, installCommands, type PipelineFlags, readPipelineFlags } from "../shared/install-commands.ts";
import { ago, CliError, stripAnsi, table } from "./output.ts";

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether stdout is a terminal (log output keeps its ANSI colours only then). */
  tty: boolean;
}

const enc = encodeURIComponent;

function base(target: string): string {
  return `/api/targets/${enc(target)}`;
}

function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2) + "\n");
}

/** The flags, checked (shared/install-commands.ts: a clear error naming the flag and why), or a CliError (exit 2). */
export function checkPipelineFlags(f: PipelineFlags): PipelineFlags {
  const checked = readPipelineFlags(f, "--");
  if (!checked.ok) throw new CliError(checked.error, 2);
  return checked.flags;
}

export async function agentsAdd(client: Client, io: Io, target: string, name: string, json: boolean, flags: PipelineFlags = {}): Promise<void> {
  const pipeline = checkPipelineFlags(flags);
  const r = await client.json("POST", `${base(target)}/agents`, { name }, (s) => s === 201 || s === 409);
  if (r.status === 409) throw new CliError(`${r.body.error ?? `agent ${name} is registered already`}: for a new token run \`hookrelay agents rotate ${name}${target === "default" ? "" : ` --target ${target}`}\``);
  const token: string = r.body.token;
  if (json) return printJson(io, { name: r.body.name, target, token, server: agentServer(client.conn.url) });
  const edit = pipeline.repo && pipeline.workdir ? "" : "\n(Edit the pipeline's repo and workdir in the config below before you paste it, or run this with --repo OWNER/NAME --workdir /srv/app.)\n";
  io.out(`Registered agent ${name} in target ${target}. Its token, shown this once (the worker keeps only its SHA-256):

  ${token}
${edit}
${installCommands({ url: client.conn.url, target, name, token, ...pipeline })}
(The leading space keeps the token out of bash's history where HISTCONTROL ignores such lines, as on Debian and
Ubuntu; install writes it to /etc/hookrelay/token, mode 0600, and the unit loads it from there.)
Then \`hookrelay agents ls\` shows ${name} connected.
`);
}

export async function agentsList(client: Client, io: Io, target: string, json: boolean): Promise<void> {
  const r = await client.json("GET", `${base(target)}/agents`);
  if (json) return printJson(io, r.body);
  const agents: any[] = r.body.agents ?? [];
  if (agents.length === 0) {
    io.out(`No agents in target ${target}: \`hookrelay agents add web-1\` registers one.\n`);
    return;
  }
  io.out(
    table(
      ["NAME", "STATE", "VERSION", "SINCE", "PIPELINES", "RUNNING"],
      agents.map((a) => [
        a.name,
        a.connected ? "connected" : a.version === "" && !a.lastSeenAt ? "never connected" : "offline",
        a.version || "-",
        a.connected ? ago(a.connectedAt) : ago(a.disconnectedAt ?? a.lastSeenAt),
        (a.pipelines ?? []).map((p: any) => p.name).join(",") || "-",
        a.runningJob ? `${a.runningJob.pipeline} (job ${a.runningJob.id})` : "-",
      ]),
    ),
  );
}

export async function agentsRotate(client: Client, io: Io, target: string, name: string, json: boolean): Promise<void> {
  const r = await client.json("POST", `${base(target)}/agents/${enc(name)}/token`);
  if (json) return printJson(io, r.body);
  io.out(`New token for agent ${name} (shown this once); the old one no longer works and its connection was closed:

  ${r.body.token}

On the server, as root:
 umask 077; printf '%s\\n' '${r.body.token}' > /etc/hookrelay/token
systemctl restart hookrelay-agent
`);
}

export async function agentsRevoke(client: Client, io: Io, target: string, name: string, json: boolean): Promise<void> {
  const r = await client.json("DELETE", `${base(target)}/agents/${enc(name)}`);
  if (json) return printJson(io, r.body);
  io.out(`Revoked agent ${name} in target ${target}: its token no longer works${r.body.canceled ? `; ${r.body.canceled} queued job(s) canceled` : ""}${r.body.interrupted ? `; ${r.body.interrupted} running job(s) interrupted` : ""}.\n`);
  io.out(`On the server: hookrelay-agent uninstall --config ${AGENT_CONFIG_PATH}\n`);
}

export async function deploy(client: Client, io: Io, o: { target: string; pipeline: string; sha?: string; ref?: string; agent?: string; json: boolean }): Promise<void> {
  const ref = o.ref === undefined ? undefined : o.ref.startsWith("refs/") ? o.ref : `refs/heads/${o.ref}`;
  const body = { pipeline: o.pipeline, ...(o.agent ? { agent: o.agent } : {}), ...(ref ? { ref } : {}), ...(o.sha ? { sha: o.sha } : {}) };
  const r = await client.json("POST", `${base(o.target)}/deploy`, body);
  if (o.json) return printJson(io, r.body);
  const deployments: any[] = r.body.deployments ?? [];
  for (const d of deployments) io.out(`deployment ${d.id}: pipeline ${d.pipeline}, ${d.jobs?.length ?? 0} host(s)\n`);
  const t = o.target === "default" ? "" : ` --target ${o.target}`;
  if (deployments[0]) io.out(`Follow it: npx hookrelay logs ${deployments[0].id} -f${t}\n`);
}

export async function status(client: Client, io: Io, target: string, limit: number, json: boolean): Promise<void> {
  const r = await client.json("GET", `${base(target)}/deployments?limit=${limit}`);
  if (json) return printJson(io, r.body);
  const ds: any[] = r.body.deployments ?? [];
  if (ds.length === 0) {
    io.out(`No deployments in target ${target} yet.\n`);
    return;
  }
  io.out(
    table(
      ["DEPLOYMENT", "STATUS", "PIPELINE", "REF", "SHA", "CREATED", "MESSAGE"],
      ds.map((d) => [
        d.id,
        d.status + (d.blockedReason ? ` (${d.blockedReason})` : ""),
        d.pipeline,
        String(d.ref ?? "").replace(/^refs\/(heads|tags)\//, ""),
        String(d.sha ?? "").slice(0, 7),
        ago(d.createdAt),
        String(d.message ?? "").slice(0, 60),
      ]),
    ),
  );
}

/** A deployment's jobs' logs (in rollout order), or one job's; `follow`: live, until each ends. */
export async function logs(client: Client, io: Io, target: string, id: string, follow: boolean): Promise<number> {
  const write = (text: string) => io.out(io.tty ? text : stripAnsi(text));
  const d = await client.json("GET", `${base(target)}/deployments/${enc(id)}`, undefined, (s) => s === 200 || s === 404);
  if (d.status === 200) {
    const jobs: any[] = d.body.jobs ?? [];
    for (const job of jobs) {
      if (jobs.length > 1) io.out(`=== ${job.agent} (job ${job.id}) ===\n`);
      await jobLog(client, target, job.id, follow, write);
    }
    const end = follow ? (await client.json("GET", `${base(target)}/deployments/${enc(id)}`)).body : d.body;
    io.err(`deployment ${id}: ${end.status}${end.blockedReason ? ` (${end.blockedReason})` : ""}\n`);
    return follow && end.status !== "succeeded" ? 1 : 0;
  }
  const j = await client.json("GET", `${base(target)}/jobs/${enc(id)}`, undefined, (s) => s === 200 || s === 404);
  if (j.status === 404) throw new CliError(`no deployment or job ${JSON.stringify(id)} in target ${target}: \`hookrelay status${target === "default" ? "" : ` ${target}`}\` lists the recent deployments`);
  await jobLog(client, target, id, follow, write);
  if (!follow) return 0;
  const end = (await client.json("GET", `${base(target)}/jobs/${enc(id)}`)).body;
  io.err(`job ${id}: ${end.status}\n`);
  return end.status === "succeeded" ? 0 : 1;
}

async function jobLog(client: Client, target: string, id: string, follow: boolean, write: (text: string) => void): Promise<void> {
  const path = `${base(target)}/jobs/${enc(id)}/log`;
  if (follow) await client.follow(path, write);
  else write(await client.text(path));
}

export async function decide(client: Client, io: Io, target: string, id: string, verb: "approve" | "reject", note: string | undefined, json: boolean): Promise<void> {
  const r = await client.json("POST", `${base(target)}/deployments/${enc(id)}/${verb}`, note === undefined ? {} : { note });
  if (json) return printJson(io, r.body);
  const waiting = (r.body.gates ?? []).filter((g: any) => g.state === "waiting").map((g: any) => g.name ?? g.kind);
  io.out(`deployment ${r.body.id}: ${verb === "approve" ? "approved" : "rejected"}, now ${r.body.status}${waiting.length ? ` (still waiting for ${waiting.join(", ")})` : ""}\n`);
}
