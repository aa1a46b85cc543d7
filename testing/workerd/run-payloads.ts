/**
 * `workflow_run` and `check_run` payloads shaped like GitHub's own (the `completed` examples of
 * @octokit/webhooks' payload-examples, trimmed of URL templates the parser never reads), with a
 * fork-shaped variant of each: a fork's workflow run names the fork as its head repository; a fork's
 * check run has a check suite whose head_branch is null and whose pull_requests are empty.
 */
export const REPO = "octo-org/octo-repo";
export const FORK = "forker/octo-repo";
export const HEAD_SHA = "3484a3fb816e0859fd6e1cea078d76385ff50625";

function repository(fullName: string, fork = false): Record<string, unknown> {
  const [owner = "", name = ""] = fullName.split("/");
  return {
    id: fork ? 300029406 : 300029405,
    node_id: "MDEwOlJlcG9zaXRvcnkzMDAwMjk0MDU=",
    name,
    full_name: fullName,
    private: false,
    owner: { login: owner, id: 41548062, type: "Organization", site_admin: false },
    html_url: `https://github.com/${fullName}`,
    fork,
    url: `https://api.github.com/repos/${fullName}`,
  };
}

type Overrides = Record<string, unknown>;

/** A completed workflow run of workflow "CI" on REPO's main at HEAD_SHA (conclusion success unless overridden). */
export function workflowRunPayload(run: Overrides = {}, top: Overrides = {}): Record<string, unknown> {
  return {
    action: "completed",
    workflow_run: {
      id: 289782451,
      name: "CI",
      node_id: "MDExOldvcmtmbG93UnVuMjg5NzgyNDUx",
      head_branch: "main",
      head_sha: HEAD_SHA,
      path: ".github/workflows/ci.yml",
      run_number: 8,
      event: "push",
      status: "completed",
      conclusion: "success",
      workflow_id: 2823525,
      check_suite_id: 1291536064,
      url: `https://api.github.com/repos/${REPO}/actions/runs/289782451`,
      html_url: `https://github.com/${REPO}/actions/runs/289782451`,
      pull_requests: [],
      created_at: "2020-10-05T16:33:24Z",
      updated_at: "2020-10-05T16:33:48Z",
      run_attempt: 1,
      run_started_at: "2020-10-05T16:33:24Z",
      head_commit: {
        id: HEAD_SHA,
        tree_id: "c30f6c3377009c4c91c85d1f15deb6f2b7c2eb37",
        message: "build(test): check workflow run event payload",
        timestamp: "2020-10-05T16:32:07Z",
        author: { name: "Matthias Fax", email: "matfax@users.noreply.github.com" },
        committer: { name: "GitHub", email: "noreply@github.com" },
      },
      repository: repository(REPO),
      head_repository: repository(REPO),
      ...run,
    },
    workflow: {
      id: 2823525,
      node_id: "MDg6V29ya2Zsb3cyODIzNTI1",
      name: "CI",
      path: ".github/workflows/ci.yml",
      state: "active",
      html_url: `https://github.com/${REPO}/blob/main/.github/workflows/ci.yml`,
    },
    repository: repository(REPO),
    organization: { login: "octo-org", id: 41548062 },
    sender: { login: "Codertocat", id: 15669918, type: "User" },
    ...top,
  };
}

/** The same run from a pull request of FORK: GitHub names the fork as head repository and lists no pull request. */
export function forkWorkflowRunPayload(run: Overrides = {}): Record<string, unknown> {
  return workflowRunPayload({ event: "pull_request", head_branch: "patch-1", head_repository: repository(FORK, true), pull_requests: [], ...run });
}

/** A completed check run "test (3.12)" on REPO at HEAD_SHA, its check suite on branch main. */
export function checkRunPayload(run: Overrides = {}, suite: Overrides = {}, top: Overrides = {}): Record<string, unknown> {
  const pullRequests = [
    {
      url: `https://api.github.com/repos/${REPO}/pulls/2`,
      id: 279147437,
      number: 2,
      head: { ref: "main", sha: HEAD_SHA, repo: { id: 300029405, url: `https://api.github.com/repos/${REPO}`, name: "octo-repo" } },
      base: { ref: "release", sha: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", repo: { id: 300029405, url: `https://api.github.com/repos/${REPO}`, name: "octo-repo" } },
    },
  ];
  return {
    action: "completed",
    check_run: {
      id: 128620228,
      node_id: "MDg6Q2hlY2tSdW4xMjg2MjAyMjg=",
      head_sha: HEAD_SHA,
      external_id: "",
      url: `https://api.github.com/repos/${REPO}/check-runs/128620228`,
      html_url: `https://github.com/${REPO}/runs/128620228`,
      details_url: "https://octocoders.io",
      status: "completed",
      conclusion: "success",
      started_at: "2019-05-15T15:21:12Z",
      completed_at: "2019-05-15T15:21:12Z",
      output: { title: null, summary: null, text: null, annotations_count: 0 },
      name: "test (3.12)",
      check_suite: {
        id: 118578147,
        node_id: "MDEwOkNoZWNrU3VpdGUxMTg1NzgxNDc=",
        head_branch: "main",
        head_sha: HEAD_SHA,
        status: "completed",
        conclusion: "success",
        url: `https://api.github.com/repos/${REPO}/check-suites/118578147`,
        before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        after: HEAD_SHA,
        pull_requests: pullRequests,
        app: { id: 29310, slug: "octocoders-linter", name: "octocoders-linter" },
        created_at: "2019-05-15T15:20:31Z",
        updated_at: "2019-05-15T15:21:14Z",
        ...suite,
      },
      app: { id: 29310, slug: "octocoders-linter", name: "octocoders-linter" },
      pull_requests: pullRequests,
      ...run,
    },
    repository: repository(REPO),
    sender: { login: "Codertocat", id: 21031067, type: "User" },
    ...top,
  };
}

/** The same check run on a pull request's head in a fork: GitHub gives its suite no head_branch and no pull requests. */
export function forkCheckRunPayload(run: Overrides = {}): Record<string, unknown> {
  return checkRunPayload({ pull_requests: [], ...run }, { head_branch: null, pull_requests: [] });
}
