/**
 * GitHub's own default for a deployment's `production_environment`: true when the environment is
 * named production or prod (any case), false otherwise. The agent's `check` and the worker both use it.
 */
export function isProductionEnvironmentName(environment: string): boolean {
  return /^(?:production|prod)$/i.test(environment);
}
