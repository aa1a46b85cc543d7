/**
 * The commands that put an agent on a server, URL, target, name and token filled in: printed by
 * `hookrelay agents add` and shown once by the dashboard's "Add a server" (/setup), so both say the same.
 */
/** The agent's `server:`: the worker's URL as ws:// or wss://. */
export function agentServer(url: string): string {
  return url.replace(/^http(s?):\/\//, "ws$1://").replace(/\/+$/, "");
}

export const AGENT_CONFIG_PATH = "/etc/hookrelay/agent.yml";

/** The lines to run as root on the server: the executable, its config (server, target, name filled in), install. */
export function installCommands(o: { url: string; target: string; name: string; token: string }): string {
  return `# On your machine, once: npm ci && npm run build, then copy the agent to the server (x64 or arm64):
scp dist/hookrelay-agent-linux-x64 root@<server>:/tmp/hookrelay-agent
#   or, on a server with Node 18+ from its distro, fetch the worker's own build and check it:
#   cd /tmp && curl -fsSLO "${o.url.replace(/\/+$/, "")}/agent/hookrelay-agent.mjs{,.sha256}" && sha256sum -c hookrelay-agent.mjs.sha256 && mv hookrelay-agent.mjs hookrelay-agent

# On the server, as root:
install -m 0755 /tmp/hookrelay-agent /usr/local/bin/hookrelay-agent
mkdir -p /etc/hookrelay
cat > ${AGENT_CONFIG_PATH} <<'EOF'
server: ${agentServer(o.url)}
target: ${o.target}
name: ${o.name}
token_file: /etc/hookrelay/token
state_dir: /var/lib/hookrelay
pipelines:
  - name: app
    repo: OWNER/REPO              # edit: the GitHub repository to deploy
    branches: [main]
    workdir: /srv/app             # edit: a git clone of it, owned by the agent's user
    steps:
      - { name: fetch, run: 'git fetch origin && git reset --hard "$HOOKRELAY_SHA"' }
EOF
hookrelay-agent check --config ${AGENT_CONFIG_PATH}
 HOOKRELAY_AGENT_TOKEN='${o.token}' hookrelay-agent install --config ${AGENT_CONFIG_PATH}
`;
}
