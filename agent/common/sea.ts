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

/**
 * The C library's allocator settings the unit runs the agent with. A step's output passes through
 * buffers that are freed by the thousand; by default glibc keeps freed memory at the top of its
 * heaps (its trim threshold grows with the largest block freed, up to 64 MiB) and gives each thread
 * an arena of its own. A fixed 128 KiB trim threshold hands it back as it is freed, and two arenas
 * are plenty for one event loop. Measured (the built agent under the real worker, three 50 MB steps
 * and 200 deliveries, then idle): RSS 75.7 MB → 69.4 MB after 5 s and 65.2 MB after 20 s. Two agents
 * taking turns at eight 50 MB steps, with and without: step p50 600 / 585 ms, agent CPU 380 / 400 ms
 * (no cost). Steps do not inherit them (runner.ts stepEnv).
 */
export const AGENT_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2", MALLOC_TRIM_THRESHOLD_: "131072" };
