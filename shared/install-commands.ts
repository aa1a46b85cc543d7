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

/** What `agents add --repo/--workdir/--branch` puts in the pipeline (checked by the CLI); each absent one stays a placeholder to edit. */
export interface PipelineFlags {
  repo?: string;
  workdir?: string;
  branch?: string;
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

