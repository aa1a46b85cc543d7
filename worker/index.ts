/** Worker entry: the Hono app's fetch handler, and the Durable Object classes (Target, AdminState). */
import { app } from "./app.ts";

export { AdminState } from "./admin-object/admin-state.ts";
export { Target } from "./target-object/target.ts";

export default app satisfies ExportedHandler<Env>;
