/** Worker entry: the Hono app's fetch handler, and the Target Durable Object class. */
import { app } from "./app.ts";

export { Target } from "./target-object/target.ts";

export default app satisfies ExportedHandler<Env>;
