import { describe, expect, it } from "vitest";
import { describe as describeValue, InvalidInput, Reader } from "./reader.ts";

/** The InvalidInput a read throws, so a test can check both its path and its message. */
function rejection(read: () => unknown): InvalidInput {
  try {
    read();
  } catch (e) {
    if (e instanceof InvalidInput) return e;
    throw e;
  }
  throw new Error("expected the read to throw InvalidInput");
}

const frame = new Reader({ type: "hello", seq: 3, ok: true, nothing: null, list: [1, "two"], nested: { name: "web-1" } });

describe("Reader", () => {
  it("reads a field by name and names the path down nested objects and lists", () => {
    expect(frame.field("type").string()).toBe("hello");
    expect(frame.field("nested").field("name").string()).toBe("web-1");
    expect(frame.field("nested").field("name").path).toBe("nested.name");
    expect(frame.field("list").array()[1]!.path).toBe("list[1]");
    expect(new Reader({ a: 1 }, "frame").field("a").path).toBe("frame.a");
  });

  it("gives a missing field as nothing at its path, and rejects a field of a non-object", () => {
    const missing = frame.field("absent");
    expect(missing.value).toBeUndefined();
    expect(missing.path).toBe("absent");
    const e = rejection(() => frame.field("type").field("x"));
    expect(e.path).toBe("type");
    expect(e.message).toBe('type: expected an object, got a string ("hello")');
    expect(rejection(() => new Reader([1]).field("x")).message).toBe("expected an object, got a list");
  });

  it("does not read inherited properties as fields", () => {
    expect(new Reader({}).field("toString").value).toBeUndefined();
    expect(new Reader({}).has("toString")).toBe(false);
  });

  it("tells whether a field is present and defined", () => {
    expect(frame.has("type")).toBe(true);
    expect(frame.has("nothing")).toBe(true);
    expect(frame.has("absent")).toBe(false);
    expect(new Reader({ u: undefined }).has("u")).toBe(false);
    expect(new Reader("text").has("length")).toBe(false);
  });

  it("lists an object's keys and rejects a non-object", () => {
    expect(frame.field("nested").keys()).toEqual(["name"]);
    expect(rejection(() => frame.field("list").keys()).message).toBe("list: expected an object, got a list");
  });

  it("reads a string within its limits, naming the path of one outside them", () => {
    expect(frame.field("type").string({ max: 5, maxBytes: 5, pattern: /^h/ })).toBe("hello");
    expect(rejection(() => frame.field("seq").string()).message).toBe("seq: expected a string, got number 3");
    expect(rejection(() => frame.field("type").string({ max: 4 })).message).toBe("type: longer than 4 characters");
    expect(rejection(() => new Reader("é", "name").string({ maxBytes: 1 })).message).toBe("name: longer than 1 bytes (UTF-8)");
    expect(rejection(() => frame.field("type").string({ pattern: /^x/ })).message).toBe("type: does not match /^x/");
    expect(rejection(() => frame.field("type").string({ pattern: /^x/, patternHint: "must start with x" })).message).toBe("type: must start with x");
  });

  it("reads an optional string as undefined when absent or null, and checks it when present", () => {
    expect(frame.field("absent").optionalString()).toBeUndefined();
    expect(frame.field("nothing").optionalString()).toBeUndefined();
    expect(frame.field("type").optionalString()).toBe("hello");
    expect(rejection(() => frame.field("seq").optionalString()).message).toBe("seq: expected a string, got number 3");
  });

  it("reads an integer within its bounds, naming the path of one outside them", () => {
    expect(frame.field("seq").int({ min: 3, max: 3 })).toBe(3);
    expect(rejection(() => new Reader(1.5, "seq").int()).message).toBe("seq: expected an integer, got number 1.5");
    expect(rejection(() => new Reader("3", "seq").int()).message).toBe('seq: expected an integer, got a string ("3")');
    expect(rejection(() => new Reader(2 ** 53, "seq").int()).message).toBe(`seq: expected an integer, got number ${2 ** 53}`);
    expect(rejection(() => frame.field("seq").int({ min: 4 })).message).toBe("seq: must be ≥ 4");
    expect(rejection(() => frame.field("seq").int({ max: 2 })).message).toBe("seq: must be ≤ 2");
  });

  it("reads a nullable integer as null, and checks it otherwise", () => {
    expect(frame.field("nothing").nullableInt()).toBeNull();
    expect(frame.field("seq").nullableInt({ max: 3 })).toBe(3);
    expect(rejection(() => frame.field("absent").nullableInt()).message).toBe("absent: expected an integer, got nothing");
  });

  it("reads a boolean and rejects anything else", () => {
    expect(frame.field("ok").boolean()).toBe(true);
    expect(new Reader(false).boolean()).toBe(false);
    expect(rejection(() => new Reader("true", "ok").boolean()).message).toBe('ok: expected true or false, got a string ("true")');
  });

  it("reads one of a fixed set of strings, listing the choices when it is not", () => {
    expect(frame.field("type").oneOf(["hello", "event"] as const)).toBe("hello");
    expect(rejection(() => frame.field("type").oneOf(["event", "pong"])).message).toBe('type: expected one of event, pong, got "hello"');
    expect(rejection(() => frame.field("seq").oneOf(["3"])).message).toBe("seq: expected a string, got number 3");
  });

  it("reads a list as readers of its items, within its length limit", () => {
    const items = frame.field("list").array({ max: 2 });
    expect(items.map((r) => r.value)).toEqual([1, "two"]);
    expect(items[0]!.int()).toBe(1);
    expect(rejection(() => items[1]!.int()).message).toBe('list[1]: expected an integer, got a string ("two")');
    expect(rejection(() => frame.field("list").array({ max: 1 })).message).toBe("list: more than 1 items");
    expect(rejection(() => frame.field("nested").array()).message).toBe("nested: expected a list, got an object");
  });

  it("fails with the reader's path, or the bare reason at the top", () => {
    const e = rejection(() => new Reader(1, "a.b").fail("no good"));
    expect(e.name).toBe("InvalidInput");
    expect(e.path).toBe("a.b");
    expect(e.message).toBe("a.b: no good");
    expect(rejection(() => new Reader(1).fail("no good")).message).toBe("no good");
  });
});

describe("describe", () => {
  it("names each kind of value, cutting long strings", () => {
    expect(describeValue(undefined)).toBe("nothing");
    expect(describeValue(null)).toBe("null");
    expect(describeValue([])).toBe("a list");
    expect(describeValue({})).toBe("an object");
    expect(describeValue(true)).toBe("boolean true");
    expect(describeValue("x".repeat(41))).toBe(`a string ("${"x".repeat(40)}…")`);
  });
});
