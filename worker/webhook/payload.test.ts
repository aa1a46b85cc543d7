import { describe, expect, it } from "vitest";
import { pathsFilter } from "../../shared/gates.ts";
import { GITHUB_MAX_PUSH_COMMITS, MAX_CHANGED_FILE_CHARS, MAX_CHANGED_FILES } from "../../shared/limits.ts";
import { readPush, readPushScope, type PushScope } from "./payload.ts";

const SHA_A = "a".repeat(40);
const SHA_B = "b".repeat(40);

/** A push shaped like GitHub's: each commit lists the paths it added, removed and modified. */
function push(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ref: "refs/heads/main",
    before: SHA_A,
    after: SHA_B,
    created: false,
    deleted: false,
    forced: false,
    base_ref: null,
    compare: "https://github.com/owner/app/compare/aaaaaaa...bbbbbbb",
    commits: [
      commit("1".repeat(40), { added: ["app/new.py"], modified: ["README.md"] }),
      commit(SHA_B, { removed: ["docs/old.md"], modified: ["app/new.py", "requirements.txt"] }),
    ],
    head_commit: commit(SHA_B, { removed: ["docs/old.md"], modified: ["app/new.py", "requirements.txt"] }),
    repository: { name: "app", full_name: "owner/app", pushed_at: 1_700_000_000 },
    pusher: { name: "octocat", email: "octocat@example.com" },
    sender: { login: "octocat" },
    ...overrides,
  };
}

function commit(id: string, files: { added?: string[]; removed?: string[]; modified?: string[] }): Record<string, unknown> {
  return {
    id,
    tree_id: "f".repeat(40),
    distinct: true,
    message: "a change",
    timestamp: "2026-12-06T15:00:00Z",
    url: `https://github.com/owner/app/commit/${id}`,
    author: { name: "Mona", email: "mona@example.com", username: "mona" },
    committer: { name: "Mona", email: "mona@example.com", username: "mona" },
    added: files.added ?? [],
    removed: files.removed ?? [],
    modified: files.modified ?? [],
  };
}

const scope = (payload: unknown): PushScope => {
  const r = readPushScope(payload);
  if (!r.ok) throw new Error(r.error);
  return r.scope;
};
const error = (payload: unknown): string => {
  const r = readPushScope(payload);
  return r.ok ? "accepted" : r.error;
};

describe("readPushScope: what a push pushed", () => {
  it("a branch push: the branch, and every changed file once, in the order first listed", () => {
    expect(scope(push())).toEqual({
      ref: { kind: "branch", branch: "main" },
      changedFiles: ["app/new.py", "README.md", "docs/old.md", "requirements.txt"],
      filesUnknown: null,
    });
  });

  it("a tag push (created or moved): the tag; paths are not evaluated for tags", () => {
    for (const created of [true, false]) {
      expect(scope(push({ ref: "refs/tags/v1.2.0", created }))).toEqual({
        ref: { kind: "tag", tag: "v1.2.0" },
        changedFiles: null,
        filesUnknown: "a tag push: paths are not evaluated for tags (as in GitHub Actions)",
      });
    }
  });

  it("a deleted tag or branch, and a ref that is neither, are ignored with the reason", () => {
    expect(scope(push({ ref: "refs/tags/v1", deleted: true, after: "0".repeat(40), commits: [] })).ref).toEqual({ kind: "ignored", reason: "tag deletion (refs/tags/v1 of owner/app)" });
    expect(scope(push({ deleted: true, after: "0".repeat(40), commits: [] })).ref).toEqual({ kind: "ignored", reason: "branch deletion (refs/heads/main of owner/app)" });
    expect(scope(push({ ref: "refs/notes/commits" })).ref).toEqual({ kind: "ignored", reason: "not a branch or tag push (refs/notes/commits of owner/app)" });
  });

  it("refuses a branch or tag ref no job could carry, naming the field", () => {
    expect(error(push({ ref: "refs/tags/v1\u0007" }))).toBe("invalid push payload: ref: contains the control character U+0007");
    expect(error(push({ ref: "refs/tags/" }))).toBe("invalid push payload: ref: must be refs/heads/<branch> or refs/tags/<tag>");
    expect(error(push({ deleted: "yes" }))).toBe('invalid push payload: deleted: expected true or false, got a string ("yes")');
  });

  it("leaves readPush and so the webhook's answer as they were: a tag push is still not a branch push", () => {
    const r = readPush(push({ ref: "refs/tags/v1.2.0" }));
    expect(r.ok && r.push.ref).toBe("refs/tags/v1.2.0");
    expect(r.ok && Object.keys(r.push).sort()).toEqual(["before", "deleted", "message", "pushedAt", "pusher", "ref", "repo", "sha"]);
  });
});

describe("readPushScope: when the push cannot tell which files changed", () => {
  it.each([
    ["a new branch", { created: true, before: "0".repeat(40) }, "a new branch: its commits are not all listed"],
    ["no commits listed", { commits: [] }, "no commits listed"],
    ["no commits key", { commits: undefined }, "no commits listed"],
  ])("%s: null, saying why, and the paths filter passes", (_what, overrides, why) => {
    const s = scope(push(overrides));
    expect(s).toMatchObject({ ref: { kind: "branch" }, changedFiles: null, filesUnknown: why });
    expect(pathsFilter({ paths: ["app/**"] }, s.changedFiles)).toEqual({ pass: true });
  });

  it("a list GitHub may have cut (2048 commits): null; one fewer is read", () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => commit(i.toString(16).padStart(40, "0"), { modified: ["docs/x.md"] }));
    expect(scope(push({ commits: many(GITHUB_MAX_PUSH_COMMITS) }))).toMatchObject({
      changedFiles: null, filesUnknown: `${GITHUB_MAX_PUSH_COMMITS} commits listed: GitHub lists at most ${GITHUB_MAX_PUSH_COMMITS}, so some may be missing`,
    });
    expect(scope(push({ commits: many(GITHUB_MAX_PUSH_COMMITS - 1) })).changedFiles).toEqual(["docs/x.md"]);
  });

  it("past the bounds (files, path length): null, as a cut list", () => {
    const files = (n: number) => Array.from({ length: n }, (_, i) => `docs/${i}.md`);
    expect(scope(push({ commits: [commit(SHA_B, { added: files(MAX_CHANGED_FILES + 1) })] }))).toMatchObject({ changedFiles: null, filesUnknown: `more than ${MAX_CHANGED_FILES} changed files` });
    expect(scope(push({ commits: [commit(SHA_B, { added: files(MAX_CHANGED_FILES) })] })).changedFiles).toHaveLength(MAX_CHANGED_FILES);
    // the same file in many commits counts once
    expect(scope(push({ commits: [commit(SHA_A, { modified: files(MAX_CHANGED_FILES) }), commit(SHA_B, { modified: files(MAX_CHANGED_FILES) })] })).changedFiles).toHaveLength(MAX_CHANGED_FILES);
    const long = `app/${"x".repeat(MAX_CHANGED_FILE_CHARS)}`;
    expect(scope(push({ commits: [commit(SHA_B, { added: [long] })] }))).toMatchObject({ changedFiles: null, filesUnknown: `a changed file's path is longer than ${MAX_CHANGED_FILE_CHARS} characters` });
  });

  it("a docs-only push fails a paths pipeline and passes one without", () => {
    const s = scope(push({ commits: [commit(SHA_B, { modified: ["docs/guide.md", "README.md"] })] }));
    expect(pathsFilter({ paths: ["app/**", "requirements.txt"] }, s.changedFiles)).toEqual({ pass: false, reason: "no changed file matches paths" });
    expect(pathsFilter({}, s.changedFiles)).toEqual({ pass: true });
  });

  it("refuses commit lists that are not lists of paths, naming the field", () => {
    expect(error(push({ commits: "all" }))).toBe('invalid push payload: commits: expected a list, got a string ("all")');
    expect(error(push({ commits: [commit(SHA_A, {}), 7] }))).toBe("invalid push payload: commits[1]: expected a commit object");
    expect(error(push({ commits: [{ ...commit(SHA_A, {}), added: ["ok", 3] }] }))).toBe("invalid push payload: commits[0].added[1]: expected a string, got number 3");
    expect(error(push({ commits: [{ ...commit(SHA_A, {}), removed: null }] }))).toBe("invalid push payload: commits[0].removed: expected a list, got null");
  });
});
