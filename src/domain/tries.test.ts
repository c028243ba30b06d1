import { describe, expect, it } from "vitest";
import { budgetSpent, counterStep, tryState, verifyOutcome } from "./tries.js";

describe("try counter rules", () => {
  it("is Blocked exactly at zero", () => {
    expect(tryState(3, 3)).toEqual({ status: "Unblocked", remainingTries: 3, maxTries: 3 });
    expect(tryState(1, 3).status).toBe("Unblocked");
    expect(tryState(0, 3)).toEqual({ status: "Blocked", remainingTries: 0, maxTries: 3 });
  });

  it("clamps a counter outside 0..max (a tenant lowered its maximum)", () => {
    expect(tryState(5, 3).remainingTries).toBe(3);
    expect(tryState(-1, 3).remainingTries).toBe(0);
  });

  it("a match resets (no step on a full counter), a mismatch decrements and records its time", () => {
    const at = "2026-12-02T10:00:00.000Z";
    const earlier = ["2026-12-01T09:00:00.000Z", "2026-12-01T09:30:00.000Z"];
    const keep = { at, keep: 2 };
    expect(counterStep({ remaining: 1, max: 3, wrongTries: earlier }, true, keep)).toEqual({
      step: "reset",
      after: { remaining: 3, wrongTries: earlier },
    });
    expect(counterStep({ remaining: 3, max: 3, wrongTries: earlier }, true, keep)).toEqual({
      step: undefined,
      after: { remaining: 3, wrongTries: earlier },
    });
    // A tenant that lowered its maximum: the reset brings the count down to it.
    expect(counterStep({ remaining: 5, max: 3, wrongTries: [] }, true, keep)).toMatchObject({
      step: "reset",
    });
    expect(counterStep({ remaining: 2, max: 3, wrongTries: earlier }, false, keep)).toEqual({
      step: "decrement",
      after: { remaining: 1, wrongTries: [earlier[1], at] },
    });
  });

  it("moves nothing at zero, whatever the value", () => {
    expect(counterStep({ remaining: 0, max: 3, wrongTries: [] }, true, { at: "x", keep: 3 })).toBe("blocked");
    expect(counterStep({ remaining: 0, max: 3, wrongTries: [] }, false, { at: "x", keep: 3 })).toBe(
      "blocked",
    );
  });

  it("answers blocked whenever the step found the counter at zero, even for the right value", () => {
    expect(verifyOutcome(true, null, 3)).toEqual({
      result: "blocked",
      status: "Blocked",
      remainingTries: 0,
      maxTries: 3,
    });
    expect(verifyOutcome(false, null, 3).result).toBe("blocked");
  });

  it("the wrong try that uses up the last one is a mismatch that leaves the secret Blocked", () => {
    expect(verifyOutcome(false, 0, 3)).toEqual({
      result: "mismatch",
      status: "Blocked",
      remainingTries: 0,
      maxTries: 3,
    });
    expect(verifyOutcome(false, 2, 3)).toEqual({
      result: "mismatch",
      status: "Unblocked",
      remainingTries: 2,
      maxTries: 3,
    });
    expect(verifyOutcome(true, 3, 3)).toEqual({
      result: "match",
      status: "Unblocked",
      remainingTries: 3,
      maxTries: 3,
    });
  });

  it("spends the wrong-try budget at the tenth wrong try of the last 24 hours, rolling", () => {
    const budget = { tries: 10, windowHours: 24 };
    const now = new Date("2030-03-15T08:00:00.000Z");
    const at = (hoursAgo: number) => new Date(now.getTime() - hoursAgo * 3_600_000).toISOString();
    const nine = Array.from({ length: 9 }, (_, i) => at(i));
    expect(budgetSpent(nine, now, budget)).toBe(false);
    expect(budgetSpent([...nine, at(0)], now, budget)).toBe(true);
    // Yesterday evening still counts (not a calendar day); exactly 24 hours ago no longer does.
    expect(budgetSpent([...nine, at(23.99)], now, budget)).toBe(true);
    expect(budgetSpent([...nine, at(24)], now, budget)).toBe(false);
    expect(budgetSpent([], now, { tries: 1, windowHours: 1 })).toBe(false);
    expect(budgetSpent([at(0)], now, { tries: 1, windowHours: 1 })).toBe(true);
  });
});
