/**
 * The dashboard (`GET /`): one static page, no external resources. It holds no data itself: the
 * browser asks the admin API with the token the operator types in (kept in sessionStorage).
 * Every value from a payload (branch names, pushers, log text) is inserted as text, never as markup.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hookrelay</title>
<style>
  :root { color-scheme: light dark; --muted: #888; --ok: #1a7f37; --bad: #cf222e; --run: #9a6700; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1rem; }
  header { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
  h1 { font-size: 1.2rem; margin: 0 1rem 0 0; }
  input { font: inherit; padding: .25rem .4rem; }
  table { border-collapse: collapse; width: 100%; margin-top: .75rem; }
  th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #8884; white-space: nowrap; }
  td.ref { max-width: 16rem; overflow: hidden; text-overflow: ellipsis; }
  tr.job { cursor: pointer; } tr.job:hover { background: #8882; } tr.sel { background: #8883; }
  .status { font-weight: 600; }
  .succeeded { color: var(--ok); } .failed, .timed_out, .interrupted { color: var(--bad); }
  .running, .queued { color: var(--run); } .canceled, .superseded, .skipped, .pending { color: var(--muted); }
  pre { background: #8881; padding: .75rem; overflow: auto; max-height: 60vh; white-space: pre-wrap; word-break: break-all; }
  #error { color: var(--bad); } .muted { color: var(--muted); }
</style>
</head>
<body>
<header>
  <h1>hookrelay</h1>
  <label>target <input id="target" value="default" size="12"></label>
  <label>admin token <input id="token" type="password" size="24" autocomplete="off"></label>
  <button id="load">show</button>
  <span id="error" role="alert"></span>
</header>
<section><h2>Agents</h2><table><thead><tr><th>name</th><th>connected</th><th>version</th><th>pipelines</th><th>last seen</th></tr></thead><tbody id="agents"></tbody></table></section>
<section><h2>Jobs</h2><table><thead><tr><th>status</th><th>pipeline</th><th>agent</th><th>ref</th><th>sha</th><th>created</th><th>took</th></tr></thead><tbody id="jobs"></tbody></table></section>
<section id="detail" hidden><h2 id="detail-title"></h2><table><thead><tr><th>step</th><th>status</th><th>exit</th><th>took</th></tr></thead><tbody id="steps"></tbody></table>
  <p><button id="cancel" hidden>cancel this job</button></p><pre id="log"></pre></section>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let selected = null;
$("token").value = sessionStorage.getItem("hookrelay-token") || "";
$("target").value = sessionStorage.getItem("hookrelay-target") || "default";

function cell(text, cls) { const td = document.createElement("td"); td.textContent = text == null ? "" : String(text); if (cls) td.className = cls; if (cls === "ref") td.title = td.textContent; return td; }
function took(a, b) { if (!a) return ""; const ms = (b ? Date.parse(b) : Date.now()) - Date.parse(a); return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s"; }
function when(t) { return t ? new Date(t).toLocaleString() : ""; }
async function api(path, init) {
  const res = await fetch("/api/targets/" + encodeURIComponent($("target").value) + path, { ...init, headers: { authorization: "Bearer " + $("token").value } });
  if (!res.ok) throw new Error(res.status + " " + (await res.text()).slice(0, 200));
  return res.headers.get("content-type")?.includes("json") ? res.json() : res.text();
}

async function refresh() {
  sessionStorage.setItem("hookrelay-token", $("token").value);
  sessionStorage.setItem("hookrelay-target", $("target").value);
  try {
    const [{ agents }, { jobs }] = await Promise.all([api("/agents"), api("/jobs?limit=50")]);
    $("agents").replaceChildren(...agents.map((a) => { const tr = document.createElement("tr"); tr.append(cell(a.name), cell(a.connected ? "yes" : "no", a.connected ? "succeeded" : "muted"), cell(a.version), cell(a.pipelines.map((p) => p.name).join(", ")), cell(when(a.lastSeenAt))); return tr; }));
    $("jobs").replaceChildren(...jobs.map((j) => {
      const tr = document.createElement("tr"); tr.className = "job" + (j.id === selected ? " sel" : "");
      tr.append(cell(j.status, "status " + j.status), cell(j.pipeline), cell(j.agent), cell(j.ref, "ref"), cell((j.sha || "").slice(0, 10)), cell(when(j.createdAt)), cell(took(j.startedAt, j.finishedAt)));
      tr.onclick = () => { selected = j.id; refresh(); };
      return tr;
    }));
    $("error").textContent = "";
    if (selected) await showJob(selected);
  } catch (e) { $("error").textContent = String(e.message || e); }
}

async function showJob(id) {
  const [job, log] = await Promise.all([api("/jobs/" + encodeURIComponent(id)), api("/jobs/" + encodeURIComponent(id) + "/log")]);
  $("detail").hidden = false;
  $("detail-title").textContent = "Job " + job.id + " — " + job.status;
  $("steps").replaceChildren(...job.steps.map((s) => { const tr = document.createElement("tr"); tr.append(cell(s.name), cell(s.status, "status " + s.status), cell(s.exitCode), cell(took(s.startedAt, s.finishedAt))); return tr; }));
  const pre = $("log"); const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = log; if (atEnd) pre.scrollTop = pre.scrollHeight;
  $("cancel").hidden = !["queued", "running"].includes(job.status);
  $("cancel").onclick = async () => { try { await api("/jobs/" + encodeURIComponent(id) + "/cancel", { method: "POST" }); refresh(); } catch (e) { $("error").textContent = String(e.message || e); } };
}

$("load").onclick = refresh;
setInterval(() => { if ($("token").value) refresh(); }, 2000);
if ($("token").value) refresh();
</script>
</body>
</html>
`;
