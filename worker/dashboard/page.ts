/** TEMP stub (helper "ui" replaces this file): the contract's exports, nothing more. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

export function pageHtml(): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hookrelay</title><link rel="stylesheet" href="/assets/app.css"><script type="module" src="/assets/app.js"></script></head><body></body></html>`;
}

export function loginHtml(o: { next: string; error: string | null }): string {
  const error = o.error === null ? "" : `<p role="alert">${escapeHtml(o.error)}</p>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hookrelay · sign in</title></head><body>${error}<form method="post" action="/login"><input type="password" name="token"><input type="hidden" name="next" value="${escapeHtml(o.next)}"><button>sign in</button></form></body></html>`;
}
