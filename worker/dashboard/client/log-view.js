// A job's log, live: one EventSource on GET …/jobs/:id/log?follow=1 (worker/api/follow-log.ts). Each
// `log` event's data is a JSON string, a piece of the log, appended as it arrives; `end` means the job
// ended and the whole log was sent, so the stream is closed (EventSource would otherwise reconnect).
// After a dropped connection EventSource reconnects by itself with Last-Event-ID and the server resumes
// from there, so nothing is fetched twice.
import { AnsiWriter } from "./ansi.js";
import { h, path } from "./dom.js";

/** A <pre> with the job's log, following it until it ends; `scope.dispose()` stops it. */
export function logView(scope, target, jobId) {
  const pre = h("pre", { class: "log", tabindex: "0", "aria-label": "log" });
  const note = h("p", { class: "log-note muted" }, "connecting…");
  const writer = new AnsiWriter(pre);
  const source = new EventSource(`/api${path("targets", target, "jobs", jobId, "log")}?follow=1`);
  scope.onDispose(() => source.close());
  // Stay at the bottom while the reader is there; once they scroll up, leave them where they are.
  let pinned = true;
  pre.addEventListener("scroll", () => {
    pinned = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  });
  source.addEventListener("open", () => {
    note.textContent = "live";
  });
  source.addEventListener("log", (e) => {
    let text;
    try {
      text = JSON.parse(e.data);
    } catch {
      return;
    }
    if (typeof text !== "string") return;
    writer.write(text);
    if (pinned) pre.scrollTop = pre.scrollHeight;
  });
  source.addEventListener("end", (e) => {
    source.close();
    let info = null;
    try {
      info = JSON.parse(e.data);
    } catch {
      /* nothing to say */
    }
    note.textContent = info && typeof info.error === "string" ? info.error : pre.textContent === "" ? "(no output)" : "";
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) note.textContent = "log stream closed (reload to retry)";
    else note.textContent = "reconnecting…";
  });
  return h("div", { class: "log-box" }, pre, note);
}
