import { describe, expect, it } from "vitest";
import { conclusionPasses } from "../../shared/gates.ts";
import { checkRunPayload, FORK, forkCheckRunPayload, forkWorkflowRunPayload, HEAD_SHA, REPO, workflowRunPayload } from "../../testing/workerd/run-payloads.ts";
import { isRunEvent, readRunEvent, type RunConclusion } from "./run-event.ts";

const completed = (event: "workflow_run" | "check_run", payload: unknown): RunConclusion => {
  const r = readRunEvent(event, payload);
  if (r.status !== "completed") throw new Error(JSON.stringify(r));
  return r.run;
};
const invalid = (event: "workflow_run" | "check_run", payload: unknown): string => {
  const r = readRunEvent(event, payload);
  return r.status === "invalid" ? r.error : `not invalid: ${JSON.stringify(r)}`;
};

describe("workflow_run", () => {
  it("reads a completed run of the repository's own commit", () => {
    expect(completed("workflow_run", workflowRunPayload())).toEqual({
      kind: "workflow_run", repo: REPO, headSha: HEAD_SHA, headRepo: REPO, fromFork: false, headBranch: "main", name: "CI",
      conclusion: "success", url: `https://github.com/${REPO}/actions/runs/289782451`, runId: 289782451, runAttempt: 1,
    });
  });

  it("ignores a pull request's run, a fork's among them: only the pushed commit's own runs open a gate", () => {
    for (const event of ["pull_request", "pull_request_target"]) {
      expect(readRunEvent("workflow_run", forkWorkflowRunPayload({ event }))).toEqual({
        status: "ignored",
        reason: `workflow "CI" ran for ${event}: a pull request's run never opens a gate (only the pushed commit's own runs do)`,
      });
    }
  });

  it("names a fork's run by its head repository, and says it is a fork's", () => {
    // A run chained from a fork's (event workflow_run) still names the fork as its head repository.
    const run = completed("workflow_run", forkWorkflowRunPayload({ event: "workflow_run" }));
    expect(run).toMatchObject({ repo: REPO, headRepo: FORK, fromFork: true, headSha: HEAD_SHA, conclusion: "success" });
  });

  it("takes a run whose head repository is gone as not the repository's own", () => {
    expect(completed("workflow_run", workflowRunPayload({ head_repository: null }))).toMatchObject({ headRepo: null, fromFork: true });
  });

  it("compares the head repository ignoring case, as GitHub does", () => {
    const payload = workflowRunPayload({ head_repository: { full_name: "Octo-Org/Octo-Repo" } });
    expect(completed("workflow_run", payload)).toMatchObject({ headRepo: "Octo-Org/Octo-Repo", fromFork: false });
  });

  it("reads a re-run's attempt and any conclusion, passing or not", () => {
    const run = completed("workflow_run", workflowRunPayload({ run_attempt: 3, conclusion: "failure" }));
    expect(run).toMatchObject({ runAttempt: 3, conclusion: "failure" });
    expect(conclusionPasses(run.conclusion)).toBe(false);
    const old = structuredClone(workflowRunPayload()) as { workflow_run: Record<string, unknown> };
    delete old.workflow_run.run_attempt;
    expect(completed("workflow_run", old).runAttempt).toBe(1);
  });

  it("takes the workflow's name when the run's is empty (older payloads)", () => {
    expect(completed("workflow_run", workflowRunPayload({ name: "" })).name).toBe("CI");
  });

  it("ignores every action but completed, saying which", () => {
    for (const action of ["requested", "in_progress"]) {
      expect(readRunEvent("workflow_run", workflowRunPayload({ status: action, conclusion: null }, { action }))).toEqual({
        status: "ignored", reason: `workflow_run action "${action}": only completed runs count for gates`,
      });
    }
  });

  it("ignores a run whose name no gate can hold, instead of refusing the delivery", () => {
    const r = readRunEvent("workflow_run", workflowRunPayload({ name: "x".repeat(300) }));
    expect(r).toMatchObject({ status: "ignored" });
    expect(r.status === "ignored" && r.reason).toMatch(/^workflow_run name "x{60}…": no gate can name it/);
  });

  it("refuses a payload GitHub would not send, naming the field", () => {
    expect(invalid("workflow_run", workflowRunPayload({ head_sha: "ABC" }))).toBe("invalid workflow_run payload: workflow_run.head_sha: must be 40 or 64 lowercase hex digits");
    expect(invalid("workflow_run", workflowRunPayload({ conclusion: null }))).toBe("invalid workflow_run payload: workflow_run.conclusion: expected a string, got null");
    expect(invalid("workflow_run", workflowRunPayload({ html_url: "javascript:alert(1)" }))).toBe(
      "invalid workflow_run payload: workflow_run.html_url: must be an https:// URL of at most 2000 characters, without spaces",
    );
    expect(invalid("workflow_run", workflowRunPayload({ head_repository: { full_name: "a/b/c" } }))).toMatch(/^invalid workflow_run payload: workflow_run\.head_repository\.full_name: must be owner\/name/);
    expect(invalid("workflow_run", workflowRunPayload({ id: -1 }))).toBe("invalid workflow_run payload: workflow_run.id: must be ≥ 1");
    expect(invalid("workflow_run", workflowRunPayload({ head_branch: "a\u0000b" }))).toMatch(/^invalid workflow_run payload: workflow_run\.head_branch: contains a NUL/);
    expect(invalid("workflow_run", workflowRunPayload({}, { repository: { full_name: "nope" } }))).toMatch(/^invalid workflow_run payload: repository\.full_name: must be owner\/name/);
    expect(invalid("workflow_run", workflowRunPayload({}, { workflow_run: "x" }))).toBe("invalid workflow_run payload: workflow_run: expected an object");
    expect(invalid("workflow_run", [])).toBe("invalid workflow_run payload: expected a JSON object");
  });
});

describe("check_run", () => {
  it("reads a completed check run of the repository's own branch", () => {
    expect(completed("check_run", checkRunPayload())).toEqual({
      kind: "check_run", repo: REPO, headSha: HEAD_SHA, headRepo: REPO, fromFork: false, headBranch: "main", name: "test (3.12)",
      conclusion: "success", url: `https://github.com/${REPO}/runs/128620228`, runId: 128620228, runAttempt: 1,
    });
  });

  it("says a fork's check run is a fork's: its check suite's head_branch is null", () => {
    expect(completed("check_run", forkCheckRunPayload())).toMatchObject({ repo: REPO, headRepo: null, fromFork: true, headBranch: null, headSha: HEAD_SHA, conclusion: "success" });
  });

  it("reads neutral and skipped (passing) and action_required (not)", () => {
    for (const [conclusion, passes] of [["neutral", true], ["skipped", true], ["action_required", false], ["cancelled", false]] as const) {
      const run = completed("check_run", checkRunPayload({ conclusion }));
      expect(run.conclusion).toBe(conclusion);
      expect(conclusionPasses(run.conclusion), conclusion).toBe(passes);
    }
  });

  it("ignores created, rerequested and requested_action", () => {
    for (const action of ["created", "rerequested", "requested_action"]) {
      expect(readRunEvent("check_run", checkRunPayload({}, {}, { action }))).toEqual({ status: "ignored", reason: `check_run action "${action}": only completed runs count for gates` });
    }
  });

  it("refuses a check run without its check suite or with a bad sha, naming the field", () => {
    expect(invalid("check_run", checkRunPayload({ check_suite: null }))).toBe("invalid check_run payload: check_run.check_suite: expected an object");
    expect(invalid("check_run", checkRunPayload({ head_sha: "g".repeat(40) }))).toBe("invalid check_run payload: check_run.head_sha: must be 40 or 64 lowercase hex digits");
    expect(invalid("check_run", checkRunPayload({}, { head_branch: 7 }))).toBe("invalid check_run payload: check_run.check_suite.head_branch: expected a string, got number 7");
    expect(invalid("check_run", checkRunPayload({}, {}, { action: 3 }))).toBe("invalid check_run payload: action: expected a string, got number 3");
  });
});

describe("isRunEvent", () => {
  it("knows the two events gates read", () => {
    expect(["workflow_run", "check_run", "push", "check_suite", "workflow_job"].map(isRunEvent)).toEqual([true, true, false, false, false]);
  });
});
