// `/` (targets: agents and recent deployments) and `/targets/:target` (agents, deployments, jobs, stored logs).
import { apiGet } from "./api.js";
import { branch, commitLink, duration, h, path, status, when } from "./dom.js";
import { navigate } from "./navigation.js";
import { setupBanner } from "./setup.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** `/`: `default` and every target named in the URL (`?t=a&t=b`; a target page's crumbs link here with it). */
export async function homePage(scope, main, _params, query) {
  const targets = [...new Set(["default", ...query.getAll("t").filter((t) => NAME.test(t))])];
  const input = h("input", { name: "target", placeholder: "target name", "aria-label": "target name", required: true, pattern: NAME.source, size: 16 });
  const form = h("form", { class: "open-target" }, input, h("button", { type: "submit" }, "Open target"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    navigate(path("targets", input.value.trim()));
  });
  const sections = targets.map((t) => h("section", { class: "card" }, h("h2", {}, h("a", { href: path("targets", t) }, t)), h("p", { class: "muted" }, "Loading…")));
  // A link to /setup while anything on its checklist is red (a newcomer's next step).
  const banner = h("div", { class: "setup-slot" });
  main.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Targets"), form), banner, ...sections);
  const draw = () =>
    Promise.all([
      setupBanner(targets).then((b) => {
        if (scope.disposed) return;
        banner.replaceChildren(...(b ? [b] : []));
        banner.setAttribute("data-checked", "");
      }),
      ...targets.map(async (t, i) => {
        const [{ agents }, { deployments }] = await Promise.all([apiGet(`${path("targets", t)}/agents`), apiGet(`${path("targets", t)}/deployments?limit=5`)]);
        if (scope.disposed) return;
        sections[i].replaceChildren(
          h("h2", {}, h("a", { href: path("targets", t) }, t)),
          agents.length ? agentList(t, agents) : h("p", { class: "muted" }, "No agents registered."),
          deployments.length ? deploymentTable(t, deployments) : h("p", { class: "muted" }, "No deployments yet."),
        );
      }),
    ]);
  await draw();
  scope.every(10_000, () => draw().catch(() => {}));
}

/** `/targets/:target`. */
export async function targetPage(scope, main, [target]) {
  document.title = `${target} · hookrelay`;
  const agentsBox = h("section", { class: "card" }, h("h2", {}, "Agents"));
  const deploymentsBox = h("section", { class: "card" }, h("h2", {}, "Deployments"));
  const jobsBox = h("section", { class: "card" }, h("h2", {}, "Jobs"));
  const storageBox = h("section", { class: "card storage" }, h("h2", {}, "Stored logs"));
  main.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, `Target ${target}`), h("a", { href: `/?t=${encodeURIComponent(target)}` }, "All targets")), agentsBox, deploymentsBox, jobsBox, storageBox);
  const base = path("targets", target);
  const draw = async () => {
    const [{ agents }, { deployments }, { jobs }, storage] = await Promise.all([
      apiGet(`${base}/agents`),
      apiGet(`${base}/deployments?limit=20`),
      apiGet(`${base}/jobs?limit=20`),
      apiGet(`${base}/storage`),
    ]);
    if (scope.disposed) return;
    storageBox.replaceChildren(h("h2", {}, "Stored logs"), storageSummary(target, storage));
    agentsBox.replaceChildren(h("h2", {}, "Agents"), agents.length ? agentTable(target, agents) : h("p", { class: "muted" }, "No agents registered. Add one on ", h("a", { href: `/setup${target === "default" ? "" : `?t=${encodeURIComponent(target)}`}` }, "the setup page"), "."));
    deploymentsBox.replaceChildren(h("h2", {}, "Deployments"), deployments.length ? deploymentTable(target, deployments) : h("p", { class: "muted" }, "No deployments yet."));
    jobsBox.replaceChildren(h("h2", {}, "Jobs"), jobs.length ? jobTable(target, jobs) : h("p", { class: "muted" }, "No jobs yet."));
  };
  await draw();
  scope.every(5_000, () => draw().catch(() => {}));
}

function mib(bytes) {
  return `${(bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 2 : 0)} MiB`;
}

/** GET …/storage: bytes and rows against the budget, and the oldest job that still has its log (older ones' were dropped or had none). */
function storageSummary(target, s) {
  const pct = s.logBudgetBytes > 0 ? Math.round((100 * s.logBytes) / s.logBudgetBytes) : 0;
  return h(
    "p",
    { class: "log-storage" },
    `${mib(s.logBytes)} in ${s.logRows.toLocaleString("en")} rows of a ${mib(s.logBudgetBytes)} budget (${pct} %). `,
    s.oldestLoggedJob
      ? h("span", {}, "Oldest job with its log: ", h("a", { href: path("targets", target, "jobs", s.oldestLoggedJob.id) }, h("code", {}, s.oldestLoggedJob.id.slice(0, 8))), " ", when(s.oldestLoggedJob.createdAt), ".")
      : h("span", { class: "muted" }, "No job has a stored log."),
    h("span", { class: "muted" }, ` Past the budget the oldest finished jobs' logs are dropped first.`),
  );
}

function connection(a) {
  if (a.connected) return h("span", { class: "status s-succeeded" }, h("span", { class: "icon", "aria-hidden": "true" }, "●"), " connected ", when(a.connectedAt));
  const since = a.disconnectedAt ?? a.lastSeenAt;
  return h("span", { class: "status s-offline" }, h("span", { class: "icon", "aria-hidden": "true" }, "○"), since ? " offline since " : " never connected", since ? when(since) : null);
}

function runningJob(target, a) {
  const job = a.runningJob;
  if (!job) return h("span", { class: "muted" }, "idle");
  return h("a", { href: job.deployment ? path("targets", target, "deployments", job.deployment) : path("targets", target, "jobs", job.id) }, `${job.pipeline} (running)`);
}

function agentList(target, agents) {
  return h("ul", { class: "agents" }, agents.map((a) => h("li", {}, h("strong", {}, a.name), " ", connection(a), " · ", runningJob(target, a))));
}

function agentTable(target, agents) {
  return table(
    ["Agent", "Connection", "Version", "Pipelines", "Now"],
    agents.map((a) => [h("strong", {}, a.name), connection(a), a.version || "—", (a.pipelines ?? []).map((p) => p.name).join(", ") || "—", runningJob(target, a)]),
  );
}

export function deploymentTable(target, deployments) {
  return table(
    ["Status", "Commit", "Pipeline", "Branch", "Pusher", "Created", "Took"],
    deployments.map((d) => [
      // A blocked deployment's reason on hover (the deployment's page shows it in full).
      d.status === "blocked" && d.blockedReason ? h("span", { title: `Blocked: ${d.blockedReason}` }, status(d.status)) : status(d.status),
      h("span", {}, h("a", { href: path("targets", target, "deployments", d.id) }, d.message || d.sha.slice(0, 7)), " ", h("span", { class: "muted" }, commitLink(d.repo, d.sha))),
      d.pipeline,
      h("span", { class: "ref" }, branch(d.ref)),
      d.pusher,
      when(d.createdAt),
      duration(d.startedAt, d.finishedAt),
    ]),
  );
}

export function jobTable(target, jobs) {
  return table(
    ["Status", "Job", "Pipeline", "Agent", "Branch", "Created", "Took"],
    jobs.map((j) => [status(j.status), h("a", { href: path("targets", target, "jobs", j.id) }, h("code", {}, j.id.slice(0, 8))), j.pipeline, j.agent, h("span", { class: "ref" }, branch(j.ref)), when(j.createdAt), duration(j.startedAt, j.finishedAt)]),
  );
}

/** A table that becomes labelled rows on a narrow screen (app.css uses data-label). */
export function table(headers, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) => h("td", { "data-label": headers[i] }, c))))),
    ),
  );
}
