/** A loopback port nobody listens on right now (the OS picks it): no fixed ports in tests or the demo. */
import { createServer } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("freePort: no port from the OS"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
