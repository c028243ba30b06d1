// Hex and key parsing: accepted sizes, rejections without echoing values.
import { describe, expect, it } from "vitest";
import { assertDigits, CryptoInputError, isHex, parseHex, parseKey, toHex, xorBytes } from "./index.js";

const KEY16 = "0123456789ABCDEFFEDCBA9876543210";

describe("parseKey", () => {
  it("accepts allowed lengths in either case", () => {
    expect(parseKey(KEY16, { allowed: [16], name: "CVK" })).toEqual(Buffer.from(KEY16, "hex"));
    expect(parseKey(KEY16.toLowerCase(), { allowed: [16, 24], name: "CVK" }).length).toBe(16);
    expect(parseKey(KEY16 + KEY16.slice(0, 16), { allowed: [16, 24], name: "K" }).length).toBe(24);
    expect(parseKey(KEY16 + KEY16, { allowed: [16, 24, 32], name: "K" }).length).toBe(32);
  });

  it.each([
    ["odd length", `${KEY16}0`, [16, 24, 32]],
    ["non-hex", `${KEY16.slice(0, 31)}G`, [16]],
    ["spaces", `${KEY16.slice(0, 30)} 0`, [16]],
    ["empty", "", [16]],
    ["too short", KEY16.slice(0, 16), [16, 24]],
    ["24 when only 16 allowed", KEY16 + KEY16.slice(0, 16), [16]],
    ["32 when 16/24 allowed", KEY16 + KEY16, [16, 24]],
    ["40 bytes", KEY16 + KEY16 + KEY16.slice(0, 16), [16, 24, 32]],
  ] as const)("rejects %s without echoing the value", (_name, hex, allowed) => {
    let message = "";
    try {
      parseKey(hex, { allowed, name: "CVK" });
    } catch (error) {
      expect(error).toBeInstanceOf(CryptoInputError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/^CVK /);
    if (hex.length > 0) expect(message).not.toContain(hex.slice(0, 8));
  });

  it("names the allowed sizes", () => {
    expect(() => parseKey("00", { allowed: [16, 24], name: "PVK" })).toThrow(
      "PVK must be 16 bytes (32 hex digits) or 24 bytes (48 hex digits)",
    );
  });
});

describe("hex helpers", () => {
  it("parses, formats and XORs", () => {
    expect(isHex("09afAF")).toBe(true);
    expect(isHex("0x12")).toBe(false);
    expect(() => parseHex("0011", { name: "block", bytes: 8 })).toThrow(CryptoInputError);
    expect(toHex(Buffer.from([0xab, 0x01]))).toBe("AB01");
    expect(toHex(xorBytes(Buffer.from("F0F0", "hex"), Buffer.from("0FF0", "hex")))).toBe("FF00");
    expect(() => xorBytes(Buffer.alloc(1), Buffer.alloc(2))).toThrow(CryptoInputError);
  });

  it("assertDigits checks length and alphabet", () => {
    expect(() => assertDigits("1234", "PIN", 4, 12)).not.toThrow();
    expect(() => assertDigits("123", "PIN", 4, 12)).toThrow("PIN must be 4-12 decimal digits");
    expect(() => assertDigits("12a4", "PIN", 4, 12)).toThrow(CryptoInputError);
    expect(() => assertDigits("12345", "expiry", 4)).toThrow("expiry must be 4 decimal digits");
  });
});
