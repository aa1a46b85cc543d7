import { DurableObject } from "cloudflare:workers";
export class Target extends DurableObject<Env> {
  async ping(): Promise<number> {
    this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS t (x INTEGER)");
    this.ctx.storage.sql.exec("INSERT INTO t VALUES (1)");
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM t").one().n;
  }
}
export default { async fetch() { return new Response("ok"); } } satisfies ExportedHandler<Env>;
