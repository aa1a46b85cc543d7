// `/setup`: a live checklist per target (GET /api/targets/:target/setup, judged by the worker), and
// "Add a server", which registers an agent and shows its token once with the server's commands.
import { apiGet, apiPost } from "./api.js";
import { h, path } from "./dom.js";
import { navigate } from "./navigation.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MARK = { ok: "✓", warn: "!", red: "✗" };
const WORD = { ok: "ok", warn: "check", red: "to do" };

/** `default` and every target named in the URL (`?t=a&t=b`), as on the home page. */
function targetsOf(query) {
  return [...new Set(["default", ...query.getAll("t").filter((t) => NAME.test(t))])];
}

export async function setupPage(scope, main, _params, query) {
  document.title = "Setup · hookrelay";
  const targets = targetsOf(query);
  const input = h("input", { name: "target", placeholder: "target name", "aria-label": "target name", required: true, pattern: NAME.source, size: 16 });
  const form = h("form", { class: "open-target" }, input, h("button", { type: "submit" }, "Check target"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const t = input.value.trim();
    const q = new URLSearchParams(query);
    if (!q.getAll("t").includes(t)) q.append("t", t);
    navigate(`/setup?${q}`);
  });
  const boxes = targets.map((t) => h("div", { class: "checklist", "data-target": t }, h("p", { class: "muted" }, "Loading…")));
  const sections = targets.map((t, i) =>
    h("section", { class: "card setup-target" }, h("h2", {}, "Target ", h("a", { href: path("targets", t) }, t)), boxes[i], addServer(t, () => draw())),
  );
  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Setup"), form),
    h("p", { class: "muted" }, "Each item turns green as its step is done; the page checks again every few seconds."),
    ...sections,
  );
  const draw = () =>
    Promise.all(
      targets.map(async (t, i) => {
        const s = await apiGet(`${path("targets", t)}/setup`);
        if (scope.disposed) return;
        boxes[i].replaceChildren(checklist(s.checks));
      }),
    );
  await draw();
  scope.every(5_000, () => draw().catch(() => {}));
}

function checklist(checks) {
  return h(
    "ul",
    { class: "checks" },
    checks.map((c) =>
      h(
        "li",
        { class: `check c-${c.state}`, "data-check": c.id, "data-state": c.state },
        h("span", { class: "mark", "aria-hidden": "true" }, MARK[c.state] ?? "•"),
        h(
          "div",
          {},
          h("strong", {}, c.title), " ", h("span", { class: "state" }, `(${WORD[c.state] ?? c.state})`),
          c.lines.map((line) => h("div", { class: "line" }, line)),
          c.fix ? h("div", { class: "fix" }, c.fix) : null,
        ),
      ),
    ),
  );
}

/** Registers an agent; its token and the server's commands are shown once, here, and never again. */
function addServer(target, redraw) {
  const name = h("input", { name: "name", placeholder: "web-1", "aria-label": "server (agent) name", required: true, pattern: NAME.source, size: 16 });
  // Optional: filled into the printed config's pipeline (else it keeps placeholders to edit), as `agents add --repo --workdir`.
  const repo = h("input", { name: "repo", placeholder: "OWNER/APP", "aria-label": "GitHub repository (optional)", size: 18 });
  const workdir = h("input", { name: "workdir", placeholder: "/srv/app", "aria-label": "app directory on the server (optional)", size: 14 });
  const button = h("button", { type: "submit" }, "Add a server");
  const out = h("div", { class: "add-server-result", "aria-live": "polite" });
  const form = h("form", { class: "add-server" }, h("label", {}, "Agent name ", name), h("label", {}, "Repository ", repo), h("label", {}, "App directory ", workdir), button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    button.disabled = true;
    out.replaceChildren();
    try {
      const r = await apiPost(`${path("targets", target)}/agents`, { name: name.value.trim(), repo: repo.value.trim(), workdir: workdir.value.trim() });
      out.replaceChildren(
        h("p", {}, "Registered ", h("strong", {}, r.name), ". Its token, shown this once (the worker keeps only its SHA-256):"),
        h("pre", { class: "token" }, r.token),
        h("p", {}, "On the server, as root:"),
        h("pre", { class: "install" }, r.install),
      );
      name.value = "";
      redraw().catch(() => {});
    } catch (err) {
      out.replaceChildren(h("p", { class: "error", role: "alert" }, err instanceof Error ? err.message : String(err)));
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "add-server-box" }, h("h3", {}, "Add a server"), form, out);
}

/** The home page's banner while any target's checklist has a red item; null when all is well. */
export async function setupBanner(targets) {
  const answers = await Promise.all(targets.map((t) => apiGet(`${path("targets", t)}/setup`).catch(() => null)));
  const red = answers.filter((a) => a && a.red > 0);
  if (red.length === 0) return null;
  const items = red.reduce((n, a) => n + a.red, 0);
  const q = new URLSearchParams(targets.filter((t) => t !== "default").map((t) => ["t", t]));
  return h(
    "p",
    { class: "setup-banner", role: "status" },
    `Setup: ${items} item${items === 1 ? "" : "s"} to do (${red.map((a) => a.target).join(", ")}). `,
    h("a", { href: `/setup${q.size ? `?${q}` : ""}` }, "Open the setup checklist"),
  );
}
