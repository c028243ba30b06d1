import { describe, expect, it } from "vitest";
import { bucketsFor, DAY_SECONDS, type RateLimits, verdict, windowOf } from "./rate-limit.js";

const limits: RateLimits = {
  perCard: 5,
  perTenant: 50,
  windowSeconds: 60,
  secureDataPerTenant: 3,
  managePerCardDay: 2,
};
const at = new Date("2026-12-01T10:00:30.000Z");

describe("rate-limit classes", () => {
  it("verify and reveal count per tenant and per card in the short window", () => {
    expect(bucketsFor(limits, "acme", { kind: "verify", route: "r", publicToken: "123" })).toEqual([
      { key: "tenant:acme", scope: "tenant", limit: 50, windowSeconds: 60 },
      { key: "card:acme:123", scope: "card", limit: 5, windowSeconds: 60 },
    ]);
    expect(bucketsFor(limits, "acme", { kind: "reveal", route: "r" })).toHaveLength(1);
  });

  it("secure-data adds a bucket of its own per tenant", () => {
    const keys = bucketsFor(limits, "acme", { kind: "secure-data", route: "r", publicToken: "1" }).map(
      (b) => b.key,
    );
    expect(keys).toEqual(["tenant:acme", "secure-data:tenant:acme", "card:acme:1"]);
  });

  it("manage counts per card per day only", () => {
    expect(bucketsFor(limits, "acme", { kind: "manage", route: "r", publicToken: "9" })).toEqual([
      { key: "manage:card:acme:9", scope: "card", limit: 2, windowSeconds: DAY_SECONDS },
    ]);
  });

  it("the verdict names the card first and retries when that bucket's own window ends", () => {
    const buckets = bucketsFor(limits, "acme", { kind: "manage", route: "r", publicToken: "9" });
    expect(verdict(buckets, new Map([["manage:card:acme:9", 2]]), at)).toEqual({ allowed: true });
    expect(verdict(buckets, new Map([["manage:card:acme:9", 3]]), at)).toEqual({
      allowed: false,
      scope: "card",
      limit: 2,
      retryAfterSeconds: 14 * 3600 - 30,
      windowSeconds: DAY_SECONDS,
    });
    const both = bucketsFor(limits, "acme", { kind: "verify", route: "r", publicToken: "1" });
    const over = verdict(
      both,
      new Map([
        ["tenant:acme", 51],
        ["card:acme:1", 6],
      ]),
      at,
    );
    expect(over).toMatchObject({ scope: "card", retryAfterSeconds: 30 });
  });

  it("a window is named by its start and ends one length later", () => {
    expect(windowOf(at, 60)).toEqual({
      start: "2026-12-01T10:00:00.000Z",
      end: "2026-12-01T10:01:00.000Z",
      secondsLeft: 30,
    });
  });
});
