import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { PipelineDecl } from "../../../shared/protocol.ts";
import type { SendOutcome } from "../../report/outcome.ts";
import { apiJson, connectAgent, hello, helloAgent, pipeline, push, uniqueName } from "../../../testing/workerd/worker-support.ts";
import { storeReportSetup } from "../reports/report-outbox.ts";
import type { ReportBody } from "../reports/report-record.ts";
import { type ChannelSender, sendDueReports } from "../reports/report-sending.ts";

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

describe("hosts that disagree on GitHub's environment (issue 23 item 11)", () => {
  it("no host's value wins: the target's defaults are used, and the deployment shows each host's value", async () => {
    const { target, id, bodies } = await deployWith({
      "web-1": { environment: "production", environmentUrl: "https://shop.example.com", productionEnvironment: true },
      "web-2": { environment: "staging", environmentUrl: "https://evil.example.net" },
    });
    expect(creation(bodies)).toMatchObject({ environment: target, production: false, transient: false });
    for (const b of bodies) if (b.kind === "github-status") expect(b).toMatchObject({ environment: target, environmentUrl: null });
    const view = (await apiJson(`/api/targets/${target}/deployments/${id}`)) as { environment: unknown };
    expect(view.environment).toEqual({
      name: target, url: null, production: false, transient: false,
      disagreements: [
        { key: "environment", hosts: [{ agent: "web-1", value: "production" }, { agent: "web-2", value: "staging" }] },
        { key: "environment_url", hosts: [{ agent: "web-1", value: "https://shop.example.com" }, { agent: "web-2", value: "https://evil.example.net" }] },
        { key: "production_environment", hosts: [{ agent: "web-1", value: true }, { agent: "web-2", value: false }] },
      ],
    });
  });

  it("what every host agrees on is used, the rest falls back alone", async () => {
    const { target, id, bodies } = await deployWith({
      "web-1": { environment: "production", environmentUrl: "https://shop.example.com" },
      "web-2": { environment: "production", environmentUrl: "https://other.example.com" },
    });
    expect(creation(bodies)).toMatchObject({ environment: "production", production: true });
    expect(bodies.find((b) => b.kind === "github-status")).toMatchObject({ environment: "production", environmentUrl: null });
    const view = (await apiJson(`/api/targets/${target}/deployments/${id}`)) as { environment: { name: string; url: string | null; disagreements: { key: string }[] } };
    expect(view.environment).toMatchObject({ name: "production", url: null, production: true });
    expect(view.environment.disagreements.map((d) => d.key)).toEqual(["environment_url"]);
  });

  it("a single host, or hosts agreeing, decide with no disagreement shown", async () => {
    const { target, id, bodies } = await deployWith({ "web-1": { environment: "staging", environmentUrl: "https://staging.example.com" } });
    expect(bodies.find((b) => b.kind === "github-status")).toMatchObject({ environment: "staging", environmentUrl: "https://staging.example.com" });
    expect(((await apiJson(`/api/targets/${target}/deployments/${id}`)) as { environment: unknown }).environment).toEqual({
      name: "staging", url: "https://staging.example.com", production: false, transient: false, disagreements: [],
    });
  });

  it("refuses a hello whose environmentUrl is not https, naming the pipeline and the key", async () => {
    const target = uniqueName();
    const agent = await connectAgent(target, "web-1");
    agent.send(hello("web-1", [pipeline({ environmentUrl: "http://shop.example.com" })]));
    const error = await agent.next("error");
    expect(error.code).toBe("bad-frame");
    expect(error.message).toContain("pipelines[0].environmentUrl");
    expect(error.message).toContain("https://");
    agent.send(hello("web-1", [pipeline({ environmentUrl: "https://shop.example.com" })]));
    expect((await agent.next("welcome")).agent).toBe("web-1");
    agent.close();
  });
});
