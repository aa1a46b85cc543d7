/**
 * Real git repositories: a bare origin, a work clone to push from, and a live checkout to deploy.
 * The one git fixture of the tests, the benchmark, the Flask site and the `npm start` demo.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const ID = ["-c", "user.name=hookrelay", "-c", "user.email=git@hookrelay.invalid", "-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false", "-c", "commit.gpgsign=false"];

/** The caller's environment without what would point git at another repository. */
function gitEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"]) delete env[key];
  return env;
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", [...ID, ...args], { cwd, env: gitEnv(), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/** A file's new content; `null` deletes it, `executable` sets the mode git records (0755). */
export type FileChange = string | null | { content: string; executable: true };

export interface GitRepo {
  dir: string;
  origin: string;
  work: string;
  live: string;
  /** Write (or delete) files in the work clone, commit, push `branch` to origin; returns the new sha. */
  commit(files: Record<string, FileChange>, message: string, branch?: string): string;
  head(cwd?: string): string;
}

export interface RepoOptions {
  /** Where origin.git, work/ and live/ go (it must exist). Default: a new temp dir. */
  dir?: string;
  branch?: string;
  /** The first commit's message. */
  message?: string;
}

export function createRepo(files: Record<string, FileChange> = { "README.md": "v1\n" }, opts: RepoOptions = {}): GitRepo {
  const branch = opts.branch ?? "main";
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "hookrelay-git-"));
  const origin = join(dir, "origin.git");
  const work = join(dir, "work");
  const live = join(dir, "live");
  git(dir, "init", "--bare", "-q", "-b", branch, origin);
  git(dir, "clone", "-q", origin, work);
  const repo: GitRepo = {
    dir,
    origin,
    work,
    live,
    commit(files, message, br = branch) {
      git(work, "checkout", "-q", "-B", br);
      for (const [path, change] of Object.entries(files)) {
        const full = join(work, path);
        if (change === null) {
          rmSync(full, { force: true });
          continue;
        }
        mkdirSync(dirname(full), { recursive: true });
        writeFileSync(full, typeof change === "string" ? change : change.content);
        if (typeof change !== "string") chmodSync(full, 0o755);
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
  repo.commit(files, opts.message ?? "initial");
  git(dir, "clone", "-q", origin, live);
  return repo;
}
