import { describe, expect, it } from "vitest";
import { ALL_PATHS_IGNORED, conclusionPasses, NO_PATH_MATCHES, pathsFilter, tagMatches } from "./gates.ts";
import { matchCost, matchesFilters } from "./glob.ts";
import { MAX_CHANGED_FILE_CHARS, MAX_CHANGED_FILES } from "./limits.ts";

describe("file path patterns (GitHub's 'Patterns to match file paths' table)", () => {
  it.each([
    ["*", ["README.md", "server.rb"], ["docs/README.md", "a/b"]],
    ["*.jsx?", ["page.js", "page.jsx"], ["src/page.js", "page.jsxx"]],
    ["**", ["all/the/files.md", "README.md"], []],
    ["*.js", ["app.js", "index.js"], ["js/index.js", "app.jsx"]],
    ["**.js", ["index.js", "js/index.js", "src/js/app.js"], ["index.jsx"]],
    ["docs/*", ["docs/README.md", "docs/file.txt"], ["docs/mona/octocat.txt", "README.md"]],
    ["docs/**", ["docs/README.md", "docs/mona/octocat.txt"], ["README.md", "other/docs/x"]],
    ["docs/**/*.md", ["docs/README.md", "docs/mona/hello-world.md", "docs/a/markdown/file.md"], ["docs/x.txt", "README.md", "docsx/a.md"]],
    ["**/docs/**", ["docs/hello.md", "dir/docs/my-file.txt", "space/docs/plan/space.doc"], ["mydocs/x", "docs"]],
    ["**/README.md", ["README.md", "js/README.md"], ["xREADME.md", "js/xREADME.md"]],
    ["**/*src/**", ["a/src/app.js", "my-src/code/js/app.js"], ["src", "a/b.js"]],
    ["**/*-post.md", ["my-post.md", "path/their-post.md"], ["post.md"]],
    ["**/migrate-*.sql", ["migrate-10909.sql", "db/migrate-v1.0.sql", "db/sept/migrate-v1.sql"], ["db/migrate.sql"]],
    ["app/**", ["app/main.py", "app/api/v1.py"], ["tests/app/x.py", "app.py"]],
    ["a/**/b", ["a/b", "a/x/b", "a/x/y/b"], ["ab", "a/xb"]],
  ])("%s", (pattern, yes, no) => {
    for (const f of yes) expect(matchesFilters(f, [pattern]), f).toBe(true);
    for (const f of no) expect(matchesFilters(f, [pattern]), f).toBe(false);
  });

  it("reads a list in order: a later ! excludes, a later positive pattern re-includes", () => {
    const list = ["*.md", "!README.md"];
    expect(["hello.md", "README.md", "docs/hello.md"].map((f) => matchesFilters(f, list))).toEqual([true, false, false]);
    const again = ["*.md", "!README.md", "README*"];
    expect(["hello.md", "README.md", "README.doc"].map((f) => matchesFilters(f, again))).toEqual([true, true, true]);
  });

  it("keeps the matcher's cost bound with a skippable ** / (no backtracking)", () => {
    const pattern = `${"**/a".repeat(30)}!`;
    const path = "a/".repeat(2000);
    expect(matchesFilters(path, [pattern])).toBe(false);
    // items ≤ 2 × pattern length; each character visits each live position at most once
    expect(matchCost(pattern, path)).toBeLessThanOrEqual((path.length + 1) * (2 * pattern.length + 1));
  });
});

describe("tagMatches", () => {
  it("deploys a tag only when the pipeline's own tags name it", () => {
    expect(tagMatches(["v*"], "v1.2.0")).toBe(true);
    expect(tagMatches(["v*"], "release-1")).toBe(false);
    expect(tagMatches(["v*"], "v1/rc")).toBe(false); // * stays within one segment
    expect(tagMatches(["v[0-9]+.[0-9]+.[0-9]+", "!v0.*"], "v0.9.1")).toBe(false);
    expect(tagMatches(["v[0-9]+.[0-9]+.[0-9]+", "!v0.*"], "v10.0.3")).toBe(true);
  });

  it("deploys no tag for a pipeline without tags", () => {
    expect(tagMatches(undefined, "v1")).toBe(false);
    expect(tagMatches([], "v1")).toBe(false);
  });
});

describe("pathsFilter", () => {
  const paths = { paths: ["app/**", "requirements.txt"] };
  const ignore = { pathsIgnore: ["docs/**", "*.md"] };

  it("passes every push for a pipeline without path filters", () => {
    expect(pathsFilter({}, ["docs/x.md"])).toEqual({ pass: true });
    expect(pathsFilter({ paths: [], pathsIgnore: [] }, [])).toEqual({ pass: true });
  });

  it("paths: passes when one changed file matches, fails when none does", () => {
    expect(pathsFilter(paths, ["docs/a.md", "app/main.py"])).toEqual({ pass: true });
    expect(pathsFilter(paths, ["requirements.txt"])).toEqual({ pass: true });
    expect(pathsFilter(paths, ["docs/a.md", "README.md", "lib/requirements.txt"])).toEqual({ pass: false, reason: NO_PATH_MATCHES });
    expect(NO_PATH_MATCHES).toBe("no changed file matches paths");
  });

  it("paths with ! : a file the list excludes does not count", () => {
    const decl = { paths: ["app/**", "!app/**/*.md"] };
    expect(pathsFilter(decl, ["app/docs/notes.md"])).toEqual({ pass: false, reason: NO_PATH_MATCHES });
    expect(pathsFilter(decl, ["app/docs/notes.md", "app/x.py"])).toEqual({ pass: true });
  });

  it("paths_ignore: passes when one changed file is outside it, fails when all are inside", () => {
    expect(pathsFilter(ignore, ["docs/a/b.txt", "README.md"])).toEqual({ pass: false, reason: ALL_PATHS_IGNORED });
    expect(pathsFilter(ignore, ["docs/a/b.txt", "app/main.py"])).toEqual({ pass: true });
    expect(pathsFilter(ignore, ["app/CHANGES.md"])).toEqual({ pass: true }); // *.md is the root only
  });

  it("passes when the push cannot tell (null), as GitHub Actions runs", () => {
    expect(pathsFilter(paths, null)).toEqual({ pass: true });
    expect(pathsFilter(ignore, null)).toEqual({ pass: true });
  });

  it("treats a list past the bounds as one that cannot tell", () => {
    const many = Array.from({ length: MAX_CHANGED_FILES + 1 }, (_, i) => `docs/${i}.md`);
    expect(pathsFilter(paths, many)).toEqual({ pass: true });
    expect(pathsFilter(paths, many.slice(0, MAX_CHANGED_FILES))).toEqual({ pass: false, reason: NO_PATH_MATCHES });
    expect(pathsFilter(paths, [`docs/${"x".repeat(MAX_CHANGED_FILE_CHARS)}`])).toEqual({ pass: true });
  });

  it("a push that changed no file (empty commits) matches nothing", () => {
    expect(pathsFilter(paths, [])).toEqual({ pass: false, reason: NO_PATH_MATCHES });
    expect(pathsFilter(ignore, [])).toEqual({ pass: false, reason: ALL_PATHS_IGNORED });
  });
});

describe("conclusionPasses", () => {
  it("passes success, neutral and skipped; fails everything else", () => {
    for (const c of ["success", "neutral", "skipped"]) expect(conclusionPasses(c), c).toBe(true);
    for (const c of ["failure", "cancelled", "timed_out", "action_required", "stale", "startup_failure", "Success", "", null, undefined]) {
      expect(conclusionPasses(c), String(c)).toBe(false);
    }
  });
});
