import { describe, expect, it } from "vitest";
import {
  assertCardAllows,
  assertSecretDeliverable,
  assertStatusTransition,
  cardPaths,
  cardStatuses,
  defaultExpiry,
  expiryToDate,
  parseExpiry,
} from "./card.js";
import { AppError } from "./errors.js";

const now = new Date("2026-11-28T10:00:00Z");

describe("card rules", () => {
  it("accepts an expiry from this month on, as YYMM", () => {
    expect(parseExpiry("2611", now)).toBe("2611");
    expect(parseExpiry("3001", now)).toBe("3001");
  });

  it("rejects a past month, a 13th month and anything not YYMM, naming the field", () => {
    for (const bad of ["2610", "2613", "2600", "261", "26-11", "abcd"]) {
      const error = (() => {
        try {
          parseExpiry(bad, now);
        } catch (e) {
          return e as AppError;
        }
        return null;
      })();
      expect(error, bad).toBeInstanceOf(AppError);
      expect(error?.code).toBe("validation_failed");
      expect(error?.fields).toHaveProperty("expiry");
    }
  });

  it("defaults to three years out and ends on the month's last day", () => {
    expect(defaultExpiry(now)).toBe("2911");
    expect(expiryToDate("2902")).toBe("2029-02-28");
    expect(expiryToDate("2802")).toBe("2028-02-29");
    expect(expiryToDate("2912")).toBe("2029-12-31");
  });

  it("never reopens a closed card, and refuses CVV/PIN work on it", () => {
    expect(() => assertStatusTransition("active", "suspended")).not.toThrow();
    expect(() => assertStatusTransition("suspended", "active")).not.toThrow();
    expect(() => assertStatusTransition("active", "closed")).not.toThrow();
    expect(() => assertStatusTransition("closed", "active")).toThrow(/closed/);
    for (const path of cardPaths) {
      expect(() => assertCardAllows("closed", path)).toThrow(
        expect.objectContaining({ code: "card_closed", status: 409 }),
      );
    }
  });

  it("what each status allows, path by path (the table docs/api.md prints)", () => {
    const allowed = (status: (typeof cardStatuses)[number]) =>
      cardPaths.filter((path) => {
        try {
          assertCardAllows(status, path);
          return true;
        } catch {
          return false;
        }
      });
    expect(Object.fromEntries(cardStatuses.map((s) => [s, allowed(s)]))).toEqual({
      active: ["verify", "read", "secure-data", "reveal", "rotate", "manage"],
      inactive: ["verify", "read", "secure-data", "reveal", "rotate", "manage"],
      suspended: ["rotate", "manage"],
      closed: [],
    });
    expect(() => assertCardAllows("suspended", "verify")).toThrow(
      expect.objectContaining({ code: "card_blocked", status: 409 }),
    );
  });

  it("a Blocked secret is not handed out", () => {
    expect(() => assertSecretDeliverable("cvv", 1)).not.toThrow();
    expect(() => assertSecretDeliverable("cvv", 0)).toThrow(
      expect.objectContaining({ code: "cvv_blocked", status: 409 }),
    );
    expect(() => assertSecretDeliverable("pin", 0)).toThrow(expect.objectContaining({ code: "pin_blocked" }));
  });
});
