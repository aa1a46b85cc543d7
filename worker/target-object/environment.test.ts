import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { PipelineDecl } from "../../shared/protocol.ts";
import type { SendOutcome } from "../report/outcome.ts";
import { apiJson, connectAgent, hello, helloAgent, pipeline, push, uniqueName } from "../test-support.ts";
import { type ReportBody, storeReportSetup } from "./outbox.ts";
import { type ChannelSender, sendDueReports } from "./report-sending.ts";

function inTarget<T>(target: string, f: (sql: SqlStorage) => T | Promise<T>): Promise<T> {
  return runInDurableObject(env.TARGET.getByName(target), (_, state) => f(state.storage.sql));
}

/** GitHub's reports of the target's first deployment, as they would be sent. */
async function gitHubBodies(target: string): Promise<ReportBody[]> {
  const bodies: ReportBody[] = [];
  const sender: ChannelSender = {
    async send(body): Promise<SendOutcome> {
      bodies.push(body);
      return { kind: "sent", status: 201, body: { id: 5 } };
    },
  };
  await inTarget(target, (sql) => sendDueReports(sql, () => sender, 10_000));
  return bodies;
}

async function reportingTarget(): Promise<string> {
  const target = uniqueName();
  await inTarget(target, (sql) =>
    storeReportSetup(sql, { target, github: { state: "on", why: null }, notify: { state: "off", why: null, on: "all", targets: [] }, publicUrl: null }),
  );
  return target;
}

async function deployWith(decls: Record<string, Partial<PipelineDecl>>): Promise<{ target: string; id: string; bodies: ReportBody[] }> {
  const target = await reportingTarget();
  for (const [agent, over] of Object.entries(decls)) await helloAgent(target, agent, [pipeline({ rollout: { batch: "100%", haltOnFailure: true }, ...over })]);
  const id = (await push(target)).body.deployments![0]!.id;
  return { target, id, bodies: await gitHubBodies(target) };
}

const creation = (bodies: ReportBody[]) => bodies.find((b) => b.kind === "github-deployment");

describe("GitHub's production and transient environment flags (issue 23 item 5)", () => {
  it("production only for an environment named production or prod (any case), as GitHub defaults it; a pipeline's own key wins; transient when declared", async () => {
    const cases: [Partial<PipelineDecl>, boolean, boolean][] = [
      [{ environment: "staging" }, false, false],
      [{ environment: "Production" }, true, false],
      [{ environment: "PROD" }, true, false],
      [{ environment: "production", productionEnvironment: false }, false, false],
      [{ environment: "review-42", productionEnvironment: true, transientEnvironment: true }, true, true],
      [{}, false, false], // the target's name (test targets are not named production)
    ];
    for (const [decl, production, transient] of cases) {
      const { bodies } = await deployWith({ "web-1": decl });
      expect(creation(bodies), JSON.stringify(decl)).toMatchObject({ kind: "github-deployment", production, transient });
    }
  });
});
