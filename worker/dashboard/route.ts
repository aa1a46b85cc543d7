/**
 * GET / — the dashboard page. It is static and public: it shows nothing until the operator's
 * browser asks the admin API with the token typed into the page.
 */
import { Hono } from "hono";
import type { AppEnv } from "../http/app-env.ts";
import { DASHBOARD_HTML } from "./page.ts";

const HEADERS = {
  "content-type": "text/html; charset=utf-8",
  // Inline script and style only, data only from this origin, never framed.
  "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

export function dashboardRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/", function dashboard(c) {
    return c.body(DASHBOARD_HTML, 200, HEADERS);
  });
  return app;
}
