/** Real git repositories for tests: a bare origin, a work clone to push from, and a live checkout to deploy. */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const ID = ["-c", "user.name=hookrelay test", "-c", "user.email=test@hookrelay.invalid", "-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false"];

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", [...ID, ...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

export interface TestRepo {
  dir: string;
  origin: string;
  work: string;
  live: string;
  /** Write files in the work clone, commit, push `branch` to origin; returns the new sha. */
  commit(files: Record<string, string>, message: string, branch?: string): string;
  head(cwd?: string): string;
}

export function createRepo(files: Record<string, string> = { "README.md": "v1\n" }, branch = "main"): TestRepo {
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-git-"));
  const origin = join(dir, "origin.git");
  const work = join(dir, "work");
  const live = join(dir, "live");
  git(dir, "init", "--bare", "-q", "-b", branch, origin);
  git(dir, "clone", "-q", origin, work);
  const repo: TestRepo = {
    dir,
    origin,
    work,
    live,
    commit(files, message, br = branch) {
      git(work, "checkout", "-q", "-B", br);
      for (const [path, content] of Object.entries(files)) {
        mkdirSync(dirname(join(work, path)), { recursive: true });
        writeFileSync(join(work, path), content);
      }
      git(work, "add", "-A");
      git(work, "commit", "-q", "-m", message);
      git(work, "push", "-q", "origin", `HEAD:refs/heads/${br}`);
      return git(work, "rev-parse", "HEAD");
    },
    head(cwd = live) {
      return git(cwd, "rev-parse", "HEAD");
    },
  };
  repo.commit(files, "initial");
  git(dir, "clone", "-q", origin, live);
  return repo;
}
