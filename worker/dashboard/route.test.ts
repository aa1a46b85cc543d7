import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("GET /", () => {
  it("serves the dashboard page with a strict content security policy and no data in it", async () => {
    const res = await exports.default.fetch("http://x/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    const html = await res.text();
    expect(html).toContain("<title>hookrelay</title>");
    // The page reads jobs through the token-protected API and writes values as text, never markup.
    expect(html).toContain('"/api/targets/"');
    expect(html).not.toContain("innerHTML");
  });
});
