/** Reading back what a process appended to a text file, for tests and the benchmark. */
import { readFileSync } from "node:fs";

/** The file's lines (split on "\n", a trailing newline leaving an empty last one); none when it is missing or unreadable. */
export function fileLines(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n");
  } catch {
    return [];
  }
}
