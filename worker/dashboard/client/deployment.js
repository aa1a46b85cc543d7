// `/targets/:target/deployments/:id`: the push, its gates (CI runs and approval: approve or reject it
// here), the rollout as hosts × steps, each host's live log, cancel and re-deploy, and what was
// reported to GitHub and chats.
import { apiGet, apiPost } from "./api.js";
import { branch, commitLink, compareLink, duration, fact, FINAL_DEPLOYMENT, FINAL_JOB, h, linkedText, path, status, webUrl, when } from "./dom.js";
import { logView } from "./log-view.js";
import { navigate } from "./navigation.js";
import { table } from "./pages.js";

const NOT_RUN = ["queued", "skipped", "superseded"];
/** An approval's or rejection's note: at most this many characters (the API's limit). */
export const NOTE_MAX = 500;
const GATE_KINDS = { workflow: "Workflow", check: "Check", approval: "Approval" };

export async function deploymentPage(scope, main, [target, id]) {
  const base = path("targets", target);
  let d = await apiGet(`${base}/deployments/${encodeURIComponent(id)}`);
  if (scope.disposed) return;
  document.title = `${d.message || d.sha.slice(0, 7)} · ${target} · hookrelay`;

  const head = h("div");
  const rollout = h("section", { class: "card" });
  const logs = h("section", { class: "logs" }, h("h2", {}, "Logs"));
  const reports = h("section", { class: "card" });
  const notice = h("p", { class: "notice", role: "status" });
  const cancel = h("button", { type: "button", class: "danger" }, "Cancel deployment");
  const redeploy = h("button", { type: "button" }, "Re-deploy this commit");
  const views = new Map();
  const noLog = h("p", { class: "muted" }, "No host has started yet.");
  logs.append(noLog);
  // The gates: their table is redrawn on each refresh; the approval form is made once and only shown or
  // hidden, so a note being typed keeps its text and focus through the page's polling.
  const gatesBody = h("div");
  const note = h("textarea", { id: "gate-note", name: "note", rows: 2, maxlength: NOTE_MAX, placeholder: "Why (optional; kept with the decision)" });
  const approve = h("button", { type: "button", class: "approve" }, "Approve");
  const reject = h("button", { type: "button", class: "danger" }, "Reject");
  const decision = h(
    "div",
    { class: "decision", hidden: true },
    h("label", { for: "gate-note" }, `Note (optional, at most ${NOTE_MAX} characters)`),
    note,
    h("div", { class: "actions" }, approve, reject),
  );
  const gates = h("section", { class: "card gates" }, h("h2", {}, "Gates"), gatesBody, decision);
  // Where the card goes: in the page only when the pipeline declares gates (an ungated deployment's page is as before).
  const gatesSlot = h("div", { class: "gates-slot" });
  approve.addEventListener("click", () => decide("approve"));
  reject.addEventListener("click", () => decide("reject"));

  cancel.addEventListener("click", () =>
    act(cancel, async () => {
      const r = await apiPost(`${base}/deployments/${encodeURIComponent(id)}/cancel`);
      notice.textContent = `Cancel requested (${r.status}).`;
      await refresh();
    }),
  );
  redeploy.addEventListener("click", () =>
    act(redeploy, async () => {
      const r = await apiPost(`${base}/deploy`, { pipeline: d.pipeline, ref: d.ref, sha: d.sha });
      const next = r.deployments?.[0]?.id;
      if (next) navigate(path("targets", target, "deployments", next));
      else notice.textContent = "Re-deploy asked; no agent took it.";
    }),
  );
  /** POST …/approve or …/reject with the note, then draw the answer. */
  function decide(verb) {
    return act([approve, reject], async () => {
      const text = note.value.trim();
      if (text.length > NOTE_MAX) throw new Error(`The note is ${text.length} characters long; at most ${NOTE_MAX} are kept. Shorten it.`);
      const r = await apiPost(`${base}/deployments/${encodeURIComponent(id)}/${verb}`, text === "" ? {} : { note: text });
      note.value = "";
      notice.textContent = `${verb === "approve" ? "Approved" : "Rejected"}: the deployment is ${r?.status ?? "changed"} now.`;
      await refresh();
    });
  }
  async function act(buttons, fn) {
    const all = Array.isArray(buttons) ? buttons : [buttons];
    for (const b of all) b.disabled = true;
    notice.textContent = "";
    try {
      await fn();
    } catch (e) {
      notice.textContent = e instanceof Error ? e.message : String(e);
    } finally {
      for (const b of all) b.disabled = false;
    }
  }

  function draw() {
    const final = FINAL_DEPLOYMENT.includes(d.status);
    const isWaiting = d.status === "waiting";
    cancel.hidden = final;
    const compare = compareLink(d.repo, d.before, d.sha);
    // (replaceChildren would write a null as the text "null": the optional parts are filtered out.)
    const parts = [
      h("div", { class: "page-head" }, h("h1", {}, status(d.status), " ", h("span", { class: "title" }, d.message || "(no commit message)")), h("div", { class: "actions" }, cancel, redeploy)),
      notice,
      d.status === "blocked" ? h("p", { class: "blocked-reason" }, h("strong", {}, "Blocked: "), d.blockedReason ? linkedText(d.blockedReason) : "no reason was recorded.", " Nothing ran on any host.") : null,
      isWaiting ? h("p", { class: "waiting-note" }, waitingText(d)) : null,
      h(
        "dl",
        { class: "facts" },
        fact("Pipeline", d.pipeline),
        fact("Branch", h("span", { class: "ref" }, branch(d.ref))),
        fact("Commit", commitLink(d.repo, d.sha), compare ? [" · ", compare] : null),
        fact("Repository", d.repo),
        fact("Pushed by", d.pusher || "—"),
        fact("Created", when(d.createdAt)),
        isWaiting ? fact("Waiting for", duration(d.createdAt) || "—") : fact(final ? "Took" : "Running for", duration(d.startedAt, d.finishedAt) || "—"),
        isWaiting && d.waitingUntil ? fact("Blocked if still waiting", h("span", { class: "waiting-until" }, when(d.waitingUntil))) : null,
        fact("Deployment", h("code", {}, d.id)),
        d.environment ? fact("GitHub environment", ...environmentFact(d.environment)) : null,
      ),
    ];
    head.replaceChildren(...parts.filter((part) => part !== null));
    const gateList = d.gates ?? [];
    // Moved only when that changes: taking the card out and back would lose a note's focus.
    if (gateList.length > 0 && gates.parentNode !== gatesSlot) gatesSlot.append(gates);
    if (gateList.length === 0) gates.remove();
    gatesBody.replaceChildren(gateTable(gateList));
    decision.hidden = !(isWaiting && gateList.some((g) => g.kind === "approval" && g.state === "waiting"));
    noLog.textContent = isWaiting
      ? "No host has started: nothing is sent to any host while a gate is open."
      : d.status === "blocked"
        ? "Nothing ran: the deployment was blocked at a gate."
        : "No host has started yet.";
    rollout.replaceChildren(h("h2", {}, "Rollout"), hostsBySteps(target, d));
    // A host's log section is made once, when it starts, and never moved: a <pre> taken out of the
    // document and put back loses where the reader had scrolled to.
    for (const job of d.jobs) {
      if (views.has(job.id) || NOT_RUN.includes(job.status)) continue;
      const section = h("section", { class: "card host-log", id: `log-${job.id}` }, h("h3", {}, job.agent, " ", h("a", { href: path("targets", target, "jobs", job.id), class: "muted" }, "job page")), logView(scope, target, job.id));
      views.set(job.id, section);
      noLog.remove();
      logs.append(section);
    }
    reports.replaceChildren(h("h2", {}, "Reports"), ...reportList(d));
  }

  async function refresh() {
    const next = await apiGet(`${base}/deployments/${encodeURIComponent(id)}`);
    if (scope.disposed) return;
    d = next;
    draw();
  }

  draw();
  main.replaceChildren(head, gatesSlot, rollout, logs, reports);
  // The gates, the rollout's statuses and durations (small JSON) while it waits or runs; the logs stream
  // by themselves. A blocked deployment never sent a job: nothing of it can still be running.
  scope.every(2_000, () => {
    if (!FINAL_DEPLOYMENT.includes(d.status) || (d.status !== "blocked" && d.jobs.some((j) => !FINAL_JOB.includes(j.status)))) refresh().catch(() => {});
  });
}

/** What a waiting deployment waits for, in words: the open gates by kind. */
function waitingText(d) {
  const open = (d.gates ?? []).filter((g) => g.state === "waiting");
  const ci = open.filter((g) => g.kind !== "approval").map((g) => g.name);
  const approval = open.some((g) => g.kind === "approval");
  const parts = [ci.length ? `CI (${ci.join(", ")})` : null, approval ? "a person's approval" : null].filter(Boolean);
  return `Waiting for ${parts.length ? parts.join(", then ") : "its gates"}: nothing is sent to any host until ${parts.length > 1 || ci.length > 1 ? "they pass" : "it passes"}.`;
}

/** One row per gate (workflows, checks, approval): its state, run, when and by whom it was decided, and which hosts asked for it. */
function gateTable(list) {
  return table(
    ["Gate", "Name", "State", "Run", "Decided", "By", "Note", "Required by"],
    list.map((g) => {
      const href = webUrl(g.url);
      return [
        GATE_KINDS[g.kind] ?? String(g.kind),
        g.name,
        status(g.state),
        href ? h("a", { href, rel: "noopener noreferrer", target: "_blank" }, "run") : h("span", { class: "muted" }, "—"),
        when(g.at),
        g.by ?? "—",
        g.note ? h("span", { class: "gate-note" }, g.note) : h("span", { class: "muted" }, "—"),
        (g.requiredBy ?? []).join(", ") || "—",
      ];
    }),
  );
}

/** One row per host (rollout order), one column per step; each cell its status and duration. */
function hostsBySteps(target, d) {
  const steps = [];
  for (const job of d.jobs) for (const s of job.steps) if (!steps.includes(s.name)) steps.push(s.name);
  const cell = (s) => (s ? h("span", { class: "step" }, status(s.status), s.startedAt ? h("small", { class: "muted" }, ` ${duration(s.startedAt, s.finishedAt)}`) : null) : h("span", { class: "muted" }, "—"));
  return table(
    ["Host", "Batch", "Status", ...steps, "Took"],
    d.jobs.map((job) => [
      h("a", { href: `#log-${job.id}`, class: "host" }, job.agent),
      String(job.batch),
      status(job.status),
      ...steps.map((name) => cell(job.steps.find((s) => s.name === name))),
      duration(job.startedAt, job.finishedAt) || "—",
    ]),
  );
}

/** The environment GitHub is told of: name, its link, production / transient. */
function environmentFact(e) {
  const kind = [e.production ? "production" : "not production", ...(e.transient ? ["transient"] : [])].join(", ");
  return [e.name, e.url ? [" · ", h("a", { href: e.url, rel: "noopener noreferrer" }, e.url)] : null, h("span", { class: "muted" }, ` (${kind})`)];
}

/** Keys the hosts declared differently: none of them was used, and each host's value is shown. */
function disagreementList(e) {
  if (!e?.disagreements?.length) return [];
  const used = { environment: `${e.name} (the target's name)`, environment_url: "no link", production_environment: `${e.production} (GitHub's default for the name)`, transient_environment: "false" };
  return [
    h("p", { class: "notice" }, `The hosts disagree on GitHub's ${e.disagreements.map((x) => x.key).join(", ")}: no host's value was used, the target's defaults were.`),
    table(
      ["Setting", "Host", "Declared", "Used instead"],
      e.disagreements.flatMap((x) => x.hosts.map((host) => [x.key, host.agent, host.value === null ? "(default)" : String(host.value), used[x.key] ?? "—"])),
    ),
  ];
}

function reportList(d) {
  const items = [h("p", { class: "muted" }, `GitHub: ${d.reporting?.github ?? "—"} · Notifications: ${d.reporting?.notifications ?? "—"}`), ...disagreementList(d.environment)];
  if (d.reports?.length) {
    items.push(
      table(
        ["State", "What", "Attempts", "Last error", "Done"],
        d.reports.map((r) => [status(r.state), r.what, String(r.attempts), r.lastError ?? "—", when(r.doneAt)]),
      ),
    );
  }
  return items;
}
