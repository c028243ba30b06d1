import { describe, expect, it } from "vitest";
import { fixedClock } from "./clock.js";
import { newPublicToken, uuidv7 } from "./ids.js";

describe("ids", () => {
  it("UUIDv7s are well-formed and keep increasing even while the clock stands still", () => {
    const clock = fixedClock("2026-03-01T00:00:00Z");
    const ids = Array.from({ length: 2000 }, () => uuidv7(clock));
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]!.slice(0, 13).replace("-", "")).toBe(
      new Date("2026-03-01T00:00:00Z").getTime().toString(16).padStart(12, "0"),
    );
  });

  it("UUIDv7 random parts stay distinct across many refills of the random pool", () => {
    let ms = Date.parse("2026-03-01T00:00:00Z");
    const clock = {
      now: () => {
        ms += 1;
        return new Date(ms);
      },
    };
    const tails = Array.from({ length: 5000 }, () => uuidv7(clock).slice(15));
    expect(new Set(tails).size).toBe(tails.length);
  });

  it("public tokens are 9 digits without a leading zero", () => {
    for (let i = 0; i < 1000; i++) expect(newPublicToken()).toMatch(/^[1-9][0-9]{8}$/);
  });
});
