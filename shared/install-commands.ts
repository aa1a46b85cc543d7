/**
 * The commands that put an agent on a server, URL, target, name and token filled in (and, from
 * `agents add --repo/--workdir/--branch`, the pipeline): printed by `hookrelay agents add` and shown
 * once by the dashboard's "Add a server" (/setup), so both say the same.
 */
/** The agent's `server:`: the worker's URL as ws:// or wss://. */
export function agentServer(url: string): string {
  return url.replace(/^http(s?):\/\//, "ws$1://").replace(/\/+$/, "");
}

export const AGENT_CONFIG_PATH = "/etc/hookrelay/agent.yml";

/** What `agents add --repo/--workdir/--branch` puts in the pipeline (checked by readPipelineFlags); each absent one stays a placeholder to edit. */
export interface PipelineFlags {
  repo?: string;
  workdir?: string;
  branch?: string;
}

const REPO_RE = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/**
 * The pipeline's repo, workdir and branch checked before they are written into a config (each error
 * names the field: `prefix` "--" for the CLI's flags, "" for the API's JSON fields); a branch given as
 * refs/heads/… is taken as its name.
 */
export function readPipelineFlags(f: PipelineFlags, prefix: string): { ok: true; flags: PipelineFlags } | { ok: false; error: string } {
  const no = (error: string) => ({ ok: false as const, error });
  if (f.repo !== undefined && !REPO_RE.test(f.repo)) return no(`${prefix}repo must be OWNER/NAME, the GitHub repository (e.g. octo/app), not ${JSON.stringify(f.repo)}`);
  if (f.workdir !== undefined) {
    const w = f.workdir;
    if (!w.startsWith("/")) return no(`${prefix}workdir must be an absolute path on the server (e.g. /srv/app), not ${JSON.stringify(w)}`);
    if (/[\x00-\x1f\x7f]/.test(w)) return no(`${prefix}workdir must not contain control characters (a newline would end the config's line)`);
    if (w.length > 4096) return no(`${prefix}workdir is longer than 4096 characters`);
    if (w.split("/").some((seg) => seg === "." || seg === "..") || w === "/") return no(`${prefix}workdir ${JSON.stringify(w)}: name the app's own directory, without . or .. (e.g. /srv/app)`);
  }
  if (f.branch !== undefined) {
    const b = f.branch.replace(/^refs\/heads\//, "");
    // git check-ref-format's rules that matter here; * and ? stay allowed (the agent's branches are globs).
    if (b === "" || b.length > 255 || !/^[A-Za-z0-9._/*?-]+$/.test(b) || b.startsWith("-") || b.startsWith("/") || b.endsWith("/") || b.endsWith(".") || b.endsWith(".lock") || b.includes("..") || b.includes("//")) {
      return no(`${prefix}branch must be a branch name (e.g. main, or a glob like release/*), not ${JSON.stringify(f.branch)}`);
    }
    return { ok: true, flags: { ...f, branch: b } };
  }
  return { ok: true, flags: f };
}

/** A YAML scalar: plain when it is only path-safe characters, else double-quoted (JSON's quoting is YAML's). */
function yamlScalar(value: string): string {
  return /^[A-Za-z0-9_./@+-]+$/.test(value) && !/^[-.]/.test(value) ? value : JSON.stringify(value);
}

/** The agent's config for the server: server, target and name filled in; the pipeline from the flags, else placeholders to edit. */
export function agentConfig(o: { url: string; target: string; name: string } & PipelineFlags): string {
  const repo = o.repo ? o.repo : "OWNER/REPO              # edit: the GitHub repository to deploy";
  const workdir = o.workdir ? yamlScalar(o.workdir) : "/srv/app             # edit: a git clone of it, owned by the agent's user";
  return `server: ${agentServer(o.url)}
target: ${o.target}
name: ${o.name}
token_file: /etc/hookrelay/token
state_dir: /var/lib/hookrelay
pipelines:
  - name: app
    repo: ${repo}
    branches: [${JSON.stringify(o.branch ?? "main")}]
    workdir: ${workdir}
    steps:
      - { name: fetch, run: 'git fetch origin && git reset --hard "$HOOKRELAY_SHA"' }
`;
}

/**
 * The lines to paste, as root, on the server: fetch the worker's agent bundle and check its SHA-256 (one
 * line, so an unchecked file is never installed), write the config, then check and install (one line:
 * install only if check passed; the token in both's environment, which `check` needs too since the
 * token file is written by `install`). The single executable (no Node on the server) is the
 * alternative, in comments.
 */
export function installCommands(o: { url: string; target: string; name: string; token: string } & PipelineFlags): string {
  const url = o.url.replace(/\/+$/, "");
  return `# On the server, as root (the agent needs Node 18 or later: Debian 12's and Ubuntu 24.04's \`apt install nodejs\` is enough):
(cd /tmp && curl -fsSLO "${url}/agent/hookrelay-agent.mjs{,.sha256}" && sha256sum -c hookrelay-agent.mjs.sha256 && install -m 0755 hookrelay-agent.mjs /usr/local/bin/hookrelay-agent)
#   or, with no Node on the server, the single executable instead: \`npm run build\` on your machine,
#   scp dist/hookrelay-agent-linux-x64 (or -arm64) root@<server>:/tmp/, then instead of the line above:
#   install -m 0755 /tmp/hookrelay-agent-linux-x64 /usr/local/bin/hookrelay-agent
mkdir -p /etc/hookrelay
cat > ${AGENT_CONFIG_PATH} <<'EOF'
${agentConfig(o)}EOF
 HOOKRELAY_AGENT_TOKEN='${o.token}' sh -c 'hookrelay-agent check --config ${AGENT_CONFIG_PATH} && hookrelay-agent install --config ${AGENT_CONFIG_PATH}'
`;
}

