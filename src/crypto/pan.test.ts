// Luhn, PAN generation and masking.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CryptoInputError, generatePan, isLuhnValid, last4, luhnCheckDigit, maskPan } from "./index.js";

describe("Luhn", () => {
  it("computes known check digits", () => {
    expect(luhnCheckDigit("7992739871")).toBe("3");
    expect(luhnCheckDigit("411111111111111")).toBe("1");
    expect(isLuhnValid("4111111111111111")).toBe(true);
    expect(isLuhnValid("4111111111111112")).toBe(false);
    expect(isLuhnValid("41111111111a1111")).toBe(false);
    expect(isLuhnValid("")).toBe(false);
    expect(() => luhnCheckDigit("12 3")).toThrow(CryptoInputError);
  });

  it("detects every single-digit error", () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9]{11,18}$/),
        fc.nat(),
        fc.integer({ min: 1, max: 9 }),
        (body, at, delta) => {
          const pan = body + luhnCheckDigit(body);
          const i = at % pan.length;
          const changed = pan.slice(0, i) + String((Number(pan[i]) + delta) % 10) + pan.slice(i + 1);
          expect(isLuhnValid(pan)).toBe(true);
          expect(isLuhnValid(changed)).toBe(false);
        },
      ),
    );
  });
});

describe("generatePan", () => {
  it("generates Luhn-valid PANs of every length with the BIN kept", () => {
    for (let length = 12; length <= 19; length++) {
      const pan = generatePan("400000", length);
      expect(pan).toMatch(new RegExp(`^400000[0-9]{${length - 6}}$`));
      expect(isLuhnValid(pan)).toBe(true);
    }
    expect(isLuhnValid(generatePan("12345678901", 12))).toBe(true);
  });

  it("uses the injected digit source", () => {
    expect(generatePan("411111", 16, () => 1)).toBe("4111111111111111");
  });

  it("draws different PANs from the CSPRNG", () => {
    const pans = new Set(Array.from({ length: 50 }, () => generatePan("400000", 16)));
    expect(pans.size).toBeGreaterThan(45);
  });

  it.each([
    ["short BIN", "40000", 16],
    ["long BIN", "400000000000", 19],
    ["non-digit BIN", "40000a", 16],
    ["length 11", "400000", 11],
    ["length 20", "400000", 20],
    ["fractional length", "400000", 16.5],
  ])("rejects %s", (_name, bin, length) => {
    expect(() => generatePan(bin as string, length as number)).toThrow(CryptoInputError);
  });

  it("rejects a bad digit source", () => {
    expect(() => generatePan("400000", 16, () => 10)).toThrow(CryptoInputError);
  });
});

describe("masking", () => {
  it("shows first 6 and last 4", () => {
    expect(maskPan("4000001234561234")).toBe("400000******1234");
    expect(maskPan("400000123456")).toBe("400000**3456");
    expect(maskPan("4000001234567891234")).toBe("400000*********1234");
    expect(last4("4000001234561234")).toBe("1234");
    expect(() => maskPan("40000012345")).toThrow(CryptoInputError);
    expect(() => last4("abc")).toThrow(CryptoInputError);
  });
});
