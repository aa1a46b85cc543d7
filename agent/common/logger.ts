/**
 * Plain log lines for journald: no timestamps (journald adds them), info on stdout,
 * warnings and errors on stderr. Job lines carry `[job <id>]`.
 */
export interface Logger {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

export function consoleLogger(): Logger {
  return {
    info: (line) => process.stdout.write(`${line}\n`),
    warn: (line) => process.stderr.write(`warning: ${line}\n`),
    error: (line) => process.stderr.write(`error: ${line}\n`),
  };
}

/** A logger that keeps its lines in memory, prefixed like the console's (for tests). */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (line) => void lines.push(line),
    warn: (line) => void lines.push(`warning: ${line}`),
    error: (line) => void lines.push(`error: ${line}`),
  };
}
