// hookrelay dashboard client. No framework: a few pages drawn with plain DOM calls (dom.js) from the
// admin API, a router on location.pathname with the history API, and EventSource for live logs.
// Data from the API only ever becomes text (textContent / text nodes), never markup.
import { SignedOut } from "./api.js";
import { deploymentPage } from "./deployment.js";
import { h, path, tickTimes } from "./dom.js";
import { jobPage } from "./job.js";
import { navigate, setDraw } from "./navigation.js";
import { homePage, targetPage } from "./pages.js";
import { setupPage } from "./setup.js";

const ROUTES = [
  [/^\/$/, () => homePage],
  [/^\/setup$/, () => setupPage],
  [/^\/targets\/([^/]+)$/, () => targetPage],
  [/^\/targets\/([^/]+)\/deployments\/([^/]+)$/, () => deploymentPage],
  [/^\/targets\/([^/]+)\/jobs\/([^/]+)$/, () => jobPage],
];

/** What a page holds open (event sources, timers); disposed when the next page is drawn. */
class Scope {
  constructor() {
    this.disposers = [];
    this.disposed = false;
  }
  onDispose(fn) {
    if (this.disposed) fn();
    else this.disposers.push(fn);
  }
  every(ms, fn) {
    const id = setInterval(fn, ms);
    this.onDispose(() => clearInterval(id));
  }
  dispose() {
    this.disposed = true;
    for (const fn of this.disposers.splice(0)) fn();
  }
}

let scope = new Scope();

async function render() {
  scope.dispose();
  scope = new Scope();
  const main = document.getElementById("app");
  const crumbs = document.getElementById("crumbs");
  const route = ROUTES.find(([re]) => re.test(location.pathname));
  if (!route) {
    main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/" }, "Back to the targets")));
    return;
  }
  try {
    const params = route[0].exec(location.pathname).slice(1).map(decodeURIComponent);
    crumbs.replaceChildren(...breadcrumbs(params));
    await route[1]()(scope, main, params, new URLSearchParams(location.search));
  } catch (e) {
    if (e instanceof SignedOut || scope.disposed) return;
    main.replaceChildren(h("p", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e)));
  }
}

function breadcrumbs([target, id]) {
  if (!target) return [];
  const out = [h("span", { class: "sep", "aria-hidden": "true" }, "/"), h("a", { href: path("targets", target) }, target)];
  if (id) out.push(h("span", { class: "sep", "aria-hidden": "true" }, "/"), h("span", {}, id.slice(0, 8)));
  return out;
}

document.addEventListener("click", (e) => {
  const a = e.target instanceof Element ? e.target.closest("a[href]") : null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || !ROUTES.some(([re]) => re.test(url.pathname))) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
setDraw(render);
window.addEventListener("popstate", render);
setInterval(tickTimes, 15_000);
render();
