/**
 * Whether this agent runs as the single executable (dist/hookrelay-agent-linux-x64): the build defines
 * __HOOKRELAY_SEA__ for it. Then there is no separate script to name in a unit's ExecStart, and V8
 * flags come from NODE_OPTIONS (an executable's own arguments are all the agent's).
 */
declare const __HOOKRELAY_SEA__: boolean | undefined;

export const IS_SEA: boolean = typeof __HOOKRELAY_SEA__ !== "undefined" && __HOOKRELAY_SEA__ === true;

/**
 * The V8 setting the unit runs the agent with: a small young generation keeps its memory low after a
 * step floods output (measured: RSS back to ~86 MB instead of ~111 MB after 50 MB), at no speed cost.
 */
export const AGENT_V8_FLAGS = "--max-semi-space-size=1";
