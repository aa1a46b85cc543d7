/** The agent's version, sent in `hello` and printed by `--version`. Kept in step with package.json (a test checks). */
export const AGENT_VERSION = "0.1.0";
