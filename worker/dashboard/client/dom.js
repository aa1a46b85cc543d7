// DOM helpers. Every value from the API becomes a text node or an attribute set with setAttribute;
// nothing is ever parsed as HTML (no innerHTML anywhere in the client).

/** h("a", { href: "/x", class: "y" }, "text", child…): an element; strings and numbers become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const ICONS = {
  succeeded: "✓", failed: "✗", running: "●", queued: "○", pending: "○", canceled: "⊘", timed_out: "⏱",
  superseded: "↷", interrupted: "⚠", skipped: "–", sent: "✓", retrying: "↻", given_up: "✗",
  // Gates: a deployment (or a gate) waiting, a deployment blocked at one, a gate passed. Text symbols
  // common fonts have (the chats' ⏸ and ⛔ are emoji, missing where no emoji font is installed).
  waiting: "‖", blocked: "⊝", passed: "✓",
};

/** A status as icon + word, so it reads without colour too. */
export function status(value) {
  return h("span", { class: `status s-${value}` }, h("span", { class: "icon", "aria-hidden": "true" }, ICONS[value] ?? "•"), ` ${String(value).replace("_", " ")}`);
}

export const FINAL_JOB = ["succeeded", "failed", "timed_out", "canceled", "superseded", "interrupted", "skipped"];
export const FINAL_DEPLOYMENT = ["succeeded", "failed", "canceled", "superseded", "blocked"];

/** "3 min ago" (or, for a time to come, "in 3 min") with the absolute time on hover; refreshed by tickTimes(). */
export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString() }, relative(iso));
}

export function relative(iso) {
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s <= -5) return `in ${span(-s)}`;
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A span of seconds to come: "40 s", "12 min", "1 h 59 min", "3 d". */
function span(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  return `${Math.floor(s / 86400)} d`;
}

export function tickTimes() {
  for (const t of document.querySelectorAll("time[datetime]")) t.textContent = relative(t.getAttribute("datetime"));
}

/** From start to end (or now, while it runs): "850 ms", "12.3 s", "4 min 05 s". */
export function duration(start, end) {
  if (!start) return "";
  const ms = Math.max(0, (end ? Date.parse(end) : Date.now()) - Date.parse(start));
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

const REPO = /^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/;
const SHA = /^[0-9a-f]{40,64}$/;

/** The short sha, linking to the commit on GitHub when repo and sha look like GitHub's. */
export function commitLink(repo, sha) {
  if (!SHA.test(sha ?? "")) return h("code", {}, sha ?? "");
  if (!REPO.test(repo ?? "")) return h("code", {}, sha.slice(0, 7));
  return h("a", { href: `https://github.com/${repo}/commit/${sha}`, rel: "noopener noreferrer", target: "_blank" }, h("code", {}, sha.slice(0, 7)));
}

/** GitHub's compare view `before...sha`, or null for a new branch (before is all zeros). */
export function compareLink(repo, before, sha) {
  if (!REPO.test(repo ?? "") || !SHA.test(before ?? "") || !SHA.test(sha ?? "") || /^0+$/.test(before)) return null;
  return h("a", { href: `https://github.com/${repo}/compare/${before}...${sha}`, rel: "noopener noreferrer", target: "_blank", title: `${before.slice(0, 7)}...${sha.slice(0, 7)}` }, "compare");
}

/** refs/heads/main → main (tags and others as they are). */
export function branch(ref) {
  return String(ref ?? "").replace(/^refs\/heads\//, "");
}

/** An http(s) URL from the API as a link target, or null: a `javascript:` (or any other) URL never becomes an href. */
export function webUrl(value) {
  try {
    const u = new URL(String(value ?? ""));
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}

/** Text with each http(s) URL in it as a link (opening a new tab); everything else stays text. */
export function linkedText(text) {
  return String(text ?? "")
    .split(/(https?:\/\/[^\s<>"]+)/)
    .map((part, i) => {
      const href = i % 2 === 1 ? webUrl(part) : null;
      return href ? h("a", { href, rel: "noopener noreferrer", target: "_blank" }, part) : part;
    })
    .filter((part) => part !== "");
}

export function path(...parts) {
  return "/" + parts.map((p) => encodeURIComponent(p)).join("/");
}

/** One fact of a page's `<dl class="facts">`: its label and its value. */
export function fact(label, ...value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}
