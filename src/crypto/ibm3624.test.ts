// IBM 3624 natural PIN / offset: reference computation, round trips for PIN lengths 4-12, check length, input rejection.
import { createCipheriv } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CryptoInputError, ibm3624NaturalPin, ibm3624Offset, ibm3624PinFromOffset } from "./index.js";

const params = {
  pvk: Buffer.from("0123456789ABCDEFFEDCBA9876543210", "hex"),
  decimalizationTable: "0123456789012345",
  validationData: "400000123456",
  pad: "F",
};

describe("IBM 3624", () => {
  it("pads validation data on the right and decimalises through the table", () => {
    const key = Buffer.concat([params.pvk, params.pvk.subarray(0, 8)]);
    const hex = createCipheriv("des-ede3-ecb", key, null)
      .setAutoPadding(false)
      .update(Buffer.from("400000123456FFFF", "hex"))
      .toString("hex");
    const expected = [...hex.slice(0, 12)]
      .map((c) => params.decimalizationTable[Number.parseInt(c, 16)])
      .join("");
    expect(ibm3624NaturalPin({ ...params, checkLength: 12 })).toBe(expected);
    expect(ibm3624NaturalPin({ ...params, checkLength: 4 })).toBe(expected.slice(0, 4));
  });

  it("offset and PIN-from-offset round-trip for PINs of 4-12 digits", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{4,12}$/), (pin) => {
        const offset = ibm3624Offset({ ...params, pin });
        expect(offset).toHaveLength(pin.length);
        expect(ibm3624PinFromOffset({ ...params, offset })).toBe(pin);
      }),
      { numRuns: 200 },
    );
  });

  it("a check length shorter than the PIN binds only the leftmost digits", () => {
    const offset = ibm3624Offset({ ...params, pin: "123456", checkLength: 4 });
    expect(offset).toBe(ibm3624Offset({ ...params, pin: "1234" }));
    expect(ibm3624PinFromOffset({ ...params, offset, checkLength: 4 })).toBe("1234");
  });

  it("the natural PIN has offset 0000", () => {
    const natural = ibm3624NaturalPin({ ...params, checkLength: 4 });
    expect(ibm3624Offset({ ...params, pin: natural })).toBe("0000");
  });

  it("accepts a triple-length PVK", () => {
    const pvk = Buffer.concat([params.pvk, params.pvk.subarray(0, 8)]);
    expect(ibm3624NaturalPin({ ...params, pvk, checkLength: 4 })).toBe(
      ibm3624NaturalPin({ ...params, checkLength: 4 }),
    );
  });

  it.each([
    ["short table", { decimalizationTable: "012345678901234" }],
    ["hex table", { decimalizationTable: "0123456789ABCDEF" }],
    ["empty validation data", { validationData: "" }],
    ["long validation data", { validationData: "11223344556677889" }],
    ["non-hex validation data", { validationData: "11223344G" }],
    ["two-digit pad", { pad: "FF" }],
    ["non-hex pad", { pad: "G" }],
    ["short PVK", { pvk: Buffer.alloc(8) }],
  ])("rejects %s", (_name, change) => {
    expect(() => ibm3624Offset({ ...params, ...change, pin: "1234" })).toThrow(CryptoInputError);
  });

  it("rejects bad PINs, offsets and check lengths", () => {
    expect(() => ibm3624Offset({ ...params, pin: "123" })).toThrow(CryptoInputError);
    expect(() => ibm3624Offset({ ...params, pin: "12a4" })).toThrow(CryptoInputError);
    expect(() => ibm3624Offset({ ...params, pin: "1234", checkLength: 5 })).toThrow(CryptoInputError);
    expect(() => ibm3624Offset({ ...params, pin: "12345", checkLength: 3 })).toThrow(CryptoInputError);
    expect(() => ibm3624PinFromOffset({ ...params, offset: "12345", checkLength: 4 })).toThrow(
      CryptoInputError,
    );
    expect(() => ibm3624NaturalPin({ ...params, checkLength: 13 })).toThrow(CryptoInputError);
  });
});
