/**
 * GitHub's environment of a new deployment, from its hosts' declarations of the pipeline: the name,
 * the URL GitHub links to ("View deployment"), and whether it is a production / transient environment.
 */
import type { PipelineDecl } from "../../shared/protocol.ts";

export interface EnvironmentChoice {
  /** null: the target's name. */
  environment: string | null;
  environmentUrl: string | null;
  /** null: GitHub's default for the environment's name (shared/environment.ts), decided when reports are queued. */
  production: boolean | null;
  transient: boolean;
}

/** `hosts` in rollout order: the first host that names a value decides it. */
export function chooseEnvironment(hosts: readonly { agent: string; pipeline: PipelineDecl }[]): EnvironmentChoice {
  const decls = hosts.map((h) => h.pipeline);
  return {
    environment: decls.find((p) => p.environment !== undefined)?.environment ?? null,
    environmentUrl: decls.find((p) => p.environmentUrl !== undefined)?.environmentUrl ?? null,
    production: decls.find((p) => p.productionEnvironment !== undefined)?.productionEnvironment ?? null,
    transient: decls.find((p) => p.transientEnvironment !== undefined)?.transientEnvironment ?? false,
  };
}
