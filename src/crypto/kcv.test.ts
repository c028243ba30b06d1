// AES-CMAC against the RFC 4493 / SP 800-38B examples and KCV argument checks.
import { describe, expect, it } from "vitest";
import { aesCmac, CryptoInputError, keyCheckValue, toHex } from "./index.js";

const hex = (h: string) => Buffer.from(h, "hex");
const M =
  "6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E5130C81C46A35CE411E5FBC1191A0A52EFF69F2445DF4F9B17AD2B417BE66C3710";

describe("AES-CMAC (RFC 4493 / SP 800-38B examples)", () => {
  it.each([
    ["2B7E151628AED2A6ABF7158809CF4F3C", 0, "BB1D6929E95937287FA37D129B756746"],
    ["2B7E151628AED2A6ABF7158809CF4F3C", 16, "070A16B46B4D4144F79BDD9DD04A287C"],
    ["2B7E151628AED2A6ABF7158809CF4F3C", 40, "DFA66747DE9AE63030CA32611497C827"],
    ["2B7E151628AED2A6ABF7158809CF4F3C", 64, "51F0BEBF7E3B9D92FC49741779363CFE"],
    [
      "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4",
      0,
      "028962F61B7BF89EFC6B551F4667D983",
    ],
    [
      "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4",
      64,
      "E1992190549F6ED5696A2C056C315410",
    ],
  ])("key %s, %i bytes", (key, length, tag) => {
    expect(toHex(aesCmac(hex(key), hex(M).subarray(0, length)))).toBe(tag);
  });
});

describe("keyCheckValue", () => {
  it("defaults to 3 bytes", () => {
    expect(keyCheckValue(hex("0123456789ABCDEFFEDCBA9876543210"), "tdes")).toBe("08D7B4");
    expect(keyCheckValue(hex("3F419E1CB7079442AA37474C2EFBF8B8"), "aes")).toBe("08793E");
  });

  it("rejects wrong key sizes, lengths and algorithms", () => {
    expect(() => keyCheckValue(Buffer.alloc(8), "tdes")).toThrow(CryptoInputError);
    expect(() => keyCheckValue(Buffer.alloc(32), "tdes")).toThrow(CryptoInputError);
    expect(() => keyCheckValue(Buffer.alloc(20), "aes")).toThrow(CryptoInputError);
    expect(() => keyCheckValue(Buffer.alloc(16), "tdes", 9)).toThrow(CryptoInputError);
    expect(() => keyCheckValue(Buffer.alloc(16), "aes", 0)).toThrow(CryptoInputError);
    expect(() => keyCheckValue(Buffer.alloc(16), "aes", 17)).toThrow(CryptoInputError);
    expect(() => keyCheckValue(Buffer.alloc(16), "rsa" as "aes")).toThrow(CryptoInputError);
  });
});
