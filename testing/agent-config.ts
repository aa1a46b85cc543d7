/** A small valid agent config for tests, and parsing it where a problem is a test failure. */
import { type AgentConfig, parseConfig } from "../agent/common/config.ts";

/** The path problems are reported against (nothing is read from it). */
export const CONFIG_FILE = "/etc/hookrelay/agent.yml";

export const MINIMAL_CONFIG = `
server: wss://relay.example.workers.dev/
state_dir: /var/lib/hookrelay
token_file: token
pipelines:
  - name: app
    repo: owner/app
    branches: [main]
    workdir: /srv/app
    steps:
      - { name: fetch, run: git fetch }
`;

/** The parsed config; throws with every problem when `text` is not valid. */
export function parseValidConfig(text: string): AgentConfig {
  const r = parseConfig(text, CONFIG_FILE);
  if (!r.ok) throw new Error(r.problems.join("\n"));
  return r.config;
}
