/** The Hono environment of the worker's app: bindings only. */
export interface AppEnv {
  Bindings: Env;
}
