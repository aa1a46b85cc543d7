/** TEMP stub (helper "ui" replaces this file): the contract's export, nothing more. */
import { Hono } from "hono";
import type { AppEnv } from "../http/app-env.ts";

export function assetRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/app.js", (c) => c.body("", 200, { "content-type": "text/javascript; charset=utf-8", "x-content-type-options": "nosniff" }));
  app.get("/app.css", (c) => c.body("", 200, { "content-type": "text/css; charset=utf-8", "x-content-type-options": "nosniff" }));
  return app;
}
