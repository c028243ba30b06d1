import { describe, expect, it } from "vitest";
import { memo } from "./memo.js";

describe("memo", () => {
  it("makes a value once per key and answers the kept one after", () => {
    const made: string[] = [];
    const upper = memo((key: string) => {
      made.push(key);
      return { value: key.toUpperCase() };
    });
    const first = upper("cvk-1");
    expect(upper("cvk-1")).toBe(first);
    expect(upper("pvk-1").value).toBe("PVK-1");
    expect(made).toEqual(["cvk-1", "pvk-1"]);
  });
});
