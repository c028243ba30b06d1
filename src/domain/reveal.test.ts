// Reveal-session rules: origins accepted only in exact serialised form, fields, lifetimes, session states.
import { describe, expect, it } from "vitest";
import { assertCardAllows } from "./card.js";
import {
  assertSessionUsable,
  normaliseFields,
  parseTargetOrigin,
  sessionCapRetryAfter,
  sessionExpiry,
} from "./reveal.js";

const now = new Date("2026-11-28T10:00:00Z");
const dev = { production: false };

describe("parseTargetOrigin", () => {
  it("accepts https origins and http on loopback hosts only", () => {
    for (const origin of ["https://app.example.com", "https://a.example:8443", "http://localhost:3000"]) {
      expect(parseTargetOrigin(origin, dev)).toBe(origin);
    }
    expect(parseTargetOrigin("http://127.0.0.1:5173", dev)).toBe("http://127.0.0.1:5173");
    expect(parseTargetOrigin("http://[::1]:8080", dev)).toBe("http://[::1]:8080");
  });

  it("refuses anything that is not exactly an origin", () => {
    for (const value of [
      "*",
      "null",
      "",
      "app.example.com",
      "https://app.example.com/",
      "https://app.example.com/x",
      "https://app.example.com?x",
      "https://APP.example.com",
      "https://app.example.com:443",
      "http://app.example.com",
      "http://10.0.0.1",
      "file:///etc/passwd",
      "javascript:alert(1)",
      "https://user@app.example.com",
    ]) {
      expect(() => parseTargetOrigin(value, dev), value).toThrow(/targetOrigin/);
    }
  });

  it("refuses wildcards and anything but a valid host name or IP literal", () => {
    for (const value of [
      "https://*",
      "https://*.example.com",
      "https://a*b.example.com",
      "https://exa_mple.com",
      "https://-bad.example.com",
      "https://bad-.example.com",
      "https://app..example.com",
      "https://app.example.com.",
      `https://${"a".repeat(64)}.example.com`,
      "https://a$b.example.com",
      "https://a~b.example.com",
      "http://localhost.example.com",
      "http://128.0.0.1",
      "http://[::2]",
    ]) {
      expect(() => parseTargetOrigin(value, dev), value).toThrow(
        expect.objectContaining({
          code: "validation_failed",
          fields: expect.objectContaining({ targetOrigin: expect.any(Array) }),
        }),
      );
    }
    for (const value of [
      "https://10.0.0.5:8443",
      "https://[2001:db8::1]",
      "https://xn--bcher-kva.example",
      "https://localhost",
      "http://127.0.0.2:3000",
      "http://127.255.255.254",
    ]) {
      expect(parseTargetOrigin(value, dev), value).toBe(value);
    }
  });

  it("allows http (loopback only) outside production; https alone in production", () => {
    for (const value of ["http://localhost:3000", "http://127.0.0.1:5173", "http://[::1]:8080"]) {
      expect(parseTargetOrigin(value, { production: false })).toBe(value);
      expect(() => parseTargetOrigin(value, { production: true }), value).toThrow(/targetOrigin/);
    }
    expect(parseTargetOrigin("https://app.example.com", { production: true })).toBe(
      "https://app.example.com",
    );
  });
});

describe("normaliseFields", () => {
  it("orders as a card reads (number, expiry, CVV, PIN) and drops duplicates", () => {
    expect(normaliseFields(["pin", "cvv", "pan", "expiry", "cvv"])).toEqual(["pan", "expiry", "cvv", "pin"]);
  });
  it("refuses an empty list or an unknown field", () => {
    expect(() => normaliseFields([])).toThrow(/fields/);
    expect(() => normaliseFields(["pan", "track2"])).toThrow(/fields/);
  });
});

describe("sessionExpiry", () => {
  it("defaults to 300 s and allows 10 to 900 s", () => {
    expect(sessionExpiry(now, undefined).toISOString()).toBe("2026-11-28T10:05:00.000Z");
    expect(sessionExpiry(now, 900).toISOString()).toBe("2026-11-28T10:15:00.000Z");
    for (const ttl of [0, 9, 901, 1.5, -10])
      expect(() => sessionExpiry(now, ttl), String(ttl)).toThrow(/ttl/);
  });
});

describe("sessionCapRetryAfter", () => {
  it("allows up to the cap in an hour; beyond it, waits until enough of them leave the hour", () => {
    const at = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
    expect(sessionCapRetryAfter([], now, 2)).toBeUndefined();
    expect(sessionCapRetryAfter([at(5)], now, 2)).toBeUndefined();
    expect(sessionCapRetryAfter([at(5), at(50)], now, 2)).toBe(600);
    expect(sessionCapRetryAfter([at(5), at(20), at(50)], now, 2)).toBe(40 * 60);
    expect(sessionCapRetryAfter([at(0)], now, 1)).toBe(3600);
  });
});

describe("session and card states", () => {
  it("a used session is used (even if also expired); an unused one expires at its instant", () => {
    const expiresAt = "2026-11-28T10:05:00.000Z";
    expect(() => assertSessionUsable({ used_at: null, expires_at: expiresAt }, now)).not.toThrow();
    expect(() =>
      assertSessionUsable({ used_at: "2026-11-28T09:59:00Z", expires_at: "2026-11-28T09:00:00Z" }, now),
    ).toThrow(expect.objectContaining({ code: "reveal_session_used" }));
    expect(() => assertSessionUsable({ used_at: null, expires_at: expiresAt }, new Date(expiresAt))).toThrow(
      expect.objectContaining({ code: "reveal_session_expired" }),
    );
  });

  it("active and inactive cards reveal; suspended is blocked; closed is closed", () => {
    expect(() => assertCardAllows("active", "reveal")).not.toThrow();
    expect(() => assertCardAllows("inactive", "reveal")).not.toThrow();
    expect(() => assertCardAllows("suspended", "reveal")).toThrow(
      expect.objectContaining({ code: "card_blocked" }),
    );
    expect(() => assertCardAllows("closed", "reveal")).toThrow(
      expect.objectContaining({ code: "card_closed" }),
    );
  });
});
