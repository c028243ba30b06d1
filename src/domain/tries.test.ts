import { describe, expect, it } from "vitest";
import { budgetSpent, counterStepFor, tryState, verifyOutcome } from "./tries.js";

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

  it("a match resets, a mismatch decrements", () => {
    expect(counterStepFor(true)).toBe("reset");
    expect(counterStepFor(false)).toBe("decrement");
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
