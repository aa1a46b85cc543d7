/**
 * GitHub's environment of a new deployment, from its hosts' declarations of the pipeline: the name,
 * the URL GitHub links to ("View deployment"), and whether it is a production / transient environment.
 * Any one host's config is only as trusted as that host: where hosts disagree, none of them wins — that
 * key falls back to the target's default (the target's name, no URL, GitHub's production default for
 * the name, not transient) and the disagreement is kept with the deployment for the API and dashboard.
 */
import type { PipelineDecl } from "../../../shared/protocol.ts";
import { isProductionEnvironmentName } from "../../../shared/environment.ts";
import { Reader } from "../../../shared/reader.ts";
import { ENVIRONMENT_KEYS, type EnvironmentDisagreement, type EnvironmentKey, type EnvironmentView } from "../types.ts";

export interface EnvironmentChoice {
  /** null: the target's name. */
  environment: string | null;
  environmentUrl: string | null;
  /** null: GitHub's default for the environment's name (shared/environment.ts), decided when reports are queued. */
  production: boolean | null;
  transient: boolean;
  disagreements: EnvironmentDisagreement[];
}

/** What one host says, each key with its default filled in where the host alone can tell it. */
function declared(p: PipelineDecl): Record<EnvironmentKey, string | boolean | null> {
  const environment = p.environment ?? null;
  return {
    environment,
    // Hello refuses anything else since https became the rule; a declaration stored before is not followed.
    environment_url: p.environmentUrl?.startsWith("https://") ? p.environmentUrl : null,
    // A host naming no environment means the target's name, which only the target knows: left to it.
    production_environment: p.productionEnvironment ?? (environment === null ? null : isProductionEnvironmentName(environment)),
    transient_environment: p.transientEnvironment ?? false,
  };
}

/** `hosts` in rollout order. */
export function chooseEnvironment(hosts: readonly { agent: string; pipeline: PipelineDecl }[]): EnvironmentChoice {
  const said = hosts.map((h) => ({ agent: h.agent, values: declared(h.pipeline) }));
  const disagreements: EnvironmentDisagreement[] = [];
  const agreed = (key: EnvironmentKey): string | boolean | null => {
    const values = said.map((s) => s.values[key]);
    if (values.every((v) => v === values[0])) return values[0] ?? null;
    disagreements.push({ key, hosts: said.map((s) => ({ agent: s.agent, value: s.values[key] })) });
    return null;
  };
  const environment = agreed("environment");
  const environmentUrl = agreed("environment_url");
  const production = agreed("production_environment");
  const transient = agreed("transient_environment");
  return {
    environment: typeof environment === "string" ? environment : null,
    environmentUrl: typeof environmentUrl === "string" ? environmentUrl : null,
    production: typeof production === "boolean" ? production : null,
    transient: transient === true,
    disagreements,
  };
}

/** `environment staging (web-1: production, web-2: staging)`: for the log line. */
export function describeDisagreements(list: readonly EnvironmentDisagreement[]): string {
  return list.map((d) => `${d.key} (${d.hosts.map((h) => `${h.agent}: ${h.value === null ? "default" : String(h.value)}`).join(", ")})`).join("; ");
}

/** The stored column back (our own JSON, still through a Reader); null → none. */
export function readDisagreements(text: string | null): EnvironmentDisagreement[] {
  if (text === null) return [];
  return new Reader(JSON.parse(text), "environment_disagreements").array().map((d) => ({
    key: d.field("key").oneOf(ENVIRONMENT_KEYS),
    hosts: d.field("hosts").array().map((h) => {
      const v = h.field("value").value;
      return { agent: h.field("agent").string(), value: typeof v === "string" || typeof v === "boolean" ? v : null };
    }),
  }));
}

/** A deployment's stored choice (columns of `deployments`). */
export interface StoredEnvironment {
  environment: string | null;
  environment_url: string | null;
  production_environment: number | null;
  transient_environment: number;
  environment_disagreements: string | null;
}

export function environmentView(row: StoredEnvironment, target: string): EnvironmentView {
  const name = row.environment ?? target;
  return {
    name,
    url: row.environment_url,
    production: row.production_environment === null ? isProductionEnvironmentName(name) : row.production_environment === 1,
    transient: row.transient_environment === 1,
    disagreements: readDisagreements(row.environment_disagreements),
  };
}
