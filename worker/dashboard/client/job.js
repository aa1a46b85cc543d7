// `/targets/:target/jobs/:id`: one host's job — its steps, its live log, cancel.
import { apiGet, apiPost } from "./api.js";
import { branch, commitLink, duration, fact, FINAL_JOB, h, path, status, when } from "./dom.js";
import { logView } from "./log-view.js";
import { table } from "./pages.js";

export async function jobPage(scope, main, [target, id]) {
  const base = `${path("targets", target)}/jobs/${encodeURIComponent(id)}`;
  let job = await apiGet(base);
  if (scope.disposed) return;
  document.title = `job ${id.slice(0, 8)} · ${target} · hookrelay`;
  const head = h("div");
  const steps = h("section", { class: "card" });
  const notice = h("p", { class: "notice", role: "status" });
  const cancel = h("button", { type: "button", class: "danger" }, "Cancel job");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      const r = await apiPost(`${base}/cancel`);
      notice.textContent = `Cancel requested (${r.status}).`;
      await refresh();
    } catch (e) {
      notice.textContent = e instanceof Error ? e.message : String(e);
    } finally {
      cancel.disabled = false;
    }
  });

  function draw() {
    cancel.hidden = FINAL_JOB.includes(job.status);
    head.replaceChildren(
      h("div", { class: "page-head" }, h("h1", {}, status(job.status), " ", h("span", { class: "title" }, `${job.pipeline} on ${job.agent}`)), h("div", { class: "actions" }, cancel)),
      notice,
      h(
        "dl",
        { class: "facts" },
        fact("Deployment", job.deployment ? h("a", { href: path("targets", target, "deployments", job.deployment) }, h("code", {}, job.deployment.slice(0, 8))) : "—"),
        fact("Branch", h("span", { class: "ref" }, branch(job.ref))),
        fact("Commit", commitLink(job.repo, job.sha)),
        fact("Created", when(job.createdAt)),
        fact("Took", duration(job.startedAt, job.finishedAt) || "—"),
        fact("Job", h("code", {}, job.id)),
      ),
    );
    steps.replaceChildren(
      h("h2", {}, "Steps"),
      table(["Step", "Status", "Exit", "Took"], job.steps.map((s) => [s.name, status(s.status), s.exitCode === null ? "—" : String(s.exitCode), duration(s.startedAt, s.finishedAt) || "—"])),
    );
  }
  async function refresh() {
    const next = await apiGet(base);
    if (!scope.disposed) (job = next), draw();
  }
  draw();
  main.replaceChildren(head, steps, h("section", { class: "card" }, h("h2", {}, "Log"), logView(scope, target, id)));
  scope.every(2_000, () => {
    if (!FINAL_JOB.includes(job.status)) refresh().catch(() => {});
  });
}
