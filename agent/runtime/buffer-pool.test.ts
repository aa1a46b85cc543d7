import { describe, expect, it } from "vitest";
import { BufferPool } from "./buffer-pool.ts";

describe("BufferPool", () => {
  it("hands a buffer given back out again, keeps at most `keep`, and takes each back once", () => {
    const pool = new BufferPool(64, 2);
    const [a, b, c] = [pool.take(), pool.take(), pool.take()];
    expect(new Set([a, b, c]).size).toBe(3);
    expect(a.length).toBe(64);
    pool.give(a);
    pool.give(a); // twice: still one place, or two takers would share it
    expect(pool.kept).toBe(1);
    pool.give(b);
    pool.give(c); // past `keep`: left to the collector
    expect(pool.kept).toBe(2);
    const again = [pool.take(), pool.take()];
    expect(new Set(again)).toEqual(new Set([a, b]));
    expect(pool.take()).not.toBe(c);
  });

  it("keeps no buffer of another size", () => {
    const pool = new BufferPool(64, 4);
    pool.give(Buffer.alloc(32));
    expect(pool.kept).toBe(0);
  });
});
