/**
 * The dashboard's HTML: one shell for every page (the client, /assets/app.js, draws the page from the
 * admin API) and the sign-in form. No inline script or style anywhere, so the CSP can forbid both;
 * the only value put into markup here (`next`, the error) is escaped.
 */

import type { ContentSecurityPolicy } from "../http/page-headers.ts";

/** Scripts and styles only as this origin's files, data only from this origin, never framed (hono/secure-headers writes it). */
export const DASHBOARD_CSP: ContentSecurityPolicy = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", "data:"],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  baseUri: ["'none'"],
  frameAncestors: ["'none'"],
};

const HEAD = `<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<link rel="stylesheet" href="/assets/app.css">`;

/** Every page: the client routes by location.pathname and fills <main>. */
export function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
${HEAD}
<title>hookrelay</title>
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/">hookrelay</a>
  <nav id="crumbs" aria-label="Breadcrumb"></nav>
  <a class="setup-link" href="/setup">Setup</a>
  <form class="logout" method="post" action="/logout"><button type="submit">Sign out</button><button type="submit" formaction="/logout/everywhere" title="End every session of the dashboard, on every browser">Sign out everywhere</button></form>
</header>
<main id="app" aria-live="polite"><p class="muted">Loading…</p></main>
<noscript><p>The dashboard needs JavaScript.</p></noscript>
</body>
</html>
`;
}

/** `/login`: the admin token once; the worker answers with a session cookie and sends the browser to `next`. */
export function loginHtml(o: { next: string; error: string | null }): string {
  const error = o.error === null ? "" : `\n  <p class="error" role="alert">${escapeHtml(o.error)}</p>`;
  return `<!doctype html>
<html lang="en">
<head>
${HEAD}
<title>Sign in · hookrelay</title>
</head>
<body class="login">
<form class="login-form" method="post" action="/login">
  <h1>hookrelay</h1>${error}
  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
  <input type="hidden" name="next" value="${escapeHtml(o.next)}">
  <button type="submit">Sign in</button>
  <p class="muted">The token is the worker's <code>ADMIN_TOKEN</code> secret. You stay signed in for 12 hours on this browser.</p>
</form>
</body>
</html>
`;
}

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ENTITIES[ch] ?? ch);
}
