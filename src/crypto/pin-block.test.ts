// ISO 9564 PIN blocks: round trips in every format and PIN length, random fill rules, malformed-block rejection.
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CryptoInputError,
  decipherPinBlock,
  decodePinBlock,
  encipherPinBlock,
  encodePinBlock,
  iso0PanField,
  type PinBlockFormat,
  toHex,
} from "./index.js";

const FORMATS: PinBlockFormat[] = [0, 1, 2, 3, 4];
const pin = fc.stringMatching(/^[0-9]{4,12}$/);
const pan = fc.stringMatching(/^[0-9]{12,19}$/);
const tdesKey = fc.constantFrom(16, 24).map((n) => randomBytes(n));
const aesKey = fc.constantFrom(16, 24, 32).map((n) => randomBytes(n));

describe("clear PIN blocks", () => {
  it("round-trip every PIN length 4-12 in every format", () => {
    for (const format of FORMATS) {
      for (let length = 4; length <= 12; length++) {
        const p = "987654321098".slice(0, length);
        const block = encodePinBlock({ format, pin: p, pan: "400000123456" });
        expect(block).toHaveLength(format === 4 ? 16 : 8);
        expect(decodePinBlock({ format, block, pan: "400000123456" })).toBe(p);
        expect(decodePinBlock({ format, block: toHex(block).toLowerCase(), pan: "400000123456" })).toBe(p);
      }
    }
  });

  it("round-trip random PINs and PANs (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...FORMATS), pin, pan, (format, p, a) => {
        expect(decodePinBlock({ format, block: encodePinBlock({ format, pin: p, pan: a }), pan: a })).toBe(p);
      }),
      { numRuns: 500 },
    );
  });

  it("fills format 1 with random nibbles, format 3 with random A-F, format 4 with A then random bytes", () => {
    const fills3 = new Set<string>();
    const tails4 = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const b3 = toHex(encodePinBlock({ format: 3, pin: "1234", pan: "4000001234567899" }));
      const clear3 = toHex(
        Buffer.from(b3, "hex").map((x, j) => x ^ (iso0PanField("4000001234567899")[j] as number)),
      );
      expect(clear3).toMatch(/^341234[A-F]{10}$/);
      fills3.add(clear3);
      const b4 = toHex(encodePinBlock({ format: 4, pin: "1234" }));
      expect(b4).toMatch(/^441234A{10}[0-9A-F]{16}$/);
      tails4.add(b4.slice(16));
    }
    expect(fills3.size).toBeGreaterThan(30);
    expect(tails4.size).toBe(40);
    expect(toHex(encodePinBlock({ format: 1, pin: "1234", random: (n) => Buffer.alloc(n, 0x5c) }))).toBe(
      "141234CCCCCCCCCC",
    );
    expect(toHex(encodePinBlock({ format: 2, pin: "12345" }))).toBe("2512345FFFFFFFFF");
  });

  it("handles 12-digit PANs in formats 0 and 3", () => {
    expect(toHex(iso0PanField("400000123456"))).toBe("0000040000012345");
    expect(toHex(encodePinBlock({ format: 0, pin: "1234", pan: "400000123456" }))).toBe("041230FFFFFEDCBA");
    expect(decodePinBlock({ format: 3, block: "341230FAFBFEDCBA", pan: "400000123456" })).toBe("1234");
  });
});

describe("malformed clear PIN blocks are rejected", () => {
  const PAN = "4000001234567899";
  /** Formats 0 and 3: the cases below give the plain PIN field; XOR the PAN field in as an encoder would. */
  const withPanField = (format: PinBlockFormat, hex: string) =>
    (format === 0 || format === 3) && hex.length === 16
      ? toHex(Buffer.from(hex, "hex").map((x, i) => x ^ (iso0PanField(PAN)[i] as number)))
      : hex;
  const cases: [string, PinBlockFormat, string][] = [
    ["wrong control (format 0 block as format 2)", 2, "041234FFFFFFFFFF"],
    ["wrong control (format 1 block as format 0)", 0, "141234FFFFFFFFFF"],
    ["wrong control (format 3 block as format 1)", 1, "341234FFFFFFFFFF"],
    ["length 3", 2, "23123FFFFFFFFFFF"],
    ["length 13", 2, "2D1234567890123F"],
    ["length 15", 1, "1F12345678901234"],
    ["non-decimal PIN digit", 2, "24123AFFFFFFFFFF"],
    ["format 2 fill not F", 2, "241234FFFFFFFFFE"],
    ["format 0 fill not F", 0, "041234FFFFFFFFFE"],
    ["format 3 fill below A", 3, "3412349FFFFFFFFF"],
    ["format 4 fill not A", 4, "441234AAAAAAAAABFFFFFFFFFFFFFFFF"],
    ["format 4 control", 4, "341234AAAAAAAAAAFFFFFFFFFFFFFFFF"],
    ["8-byte block in format 4", 4, "441234AAAAAAAAAA"],
    ["16-byte block in format 0", 0, "041234FFFFFFFFFF041234FFFFFFFFFF"],
    ["odd hex", 2, "241234FFFFFFFFF"],
    ["non-hex", 2, "241234FFFFFFFFFG"],
  ];

  it.each(cases)("%s", (_name, format, hex) => {
    expect(() => decodePinBlock({ format, block: withPanField(format, hex), pan: PAN })).toThrow(
      CryptoInputError,
    );
  });

  it("rejects bad formats, PINs and PANs", () => {
    expect(() => encodePinBlock({ format: 5 as PinBlockFormat, pin: "1234" })).toThrow(CryptoInputError);
    expect(() => encodePinBlock({ format: 2, pin: "123" })).toThrow(CryptoInputError);
    expect(() => encodePinBlock({ format: 2, pin: "1234567890123" })).toThrow(CryptoInputError);
    expect(() => encodePinBlock({ format: 2, pin: "12a4" })).toThrow(CryptoInputError);
    expect(() => encodePinBlock({ format: 0, pin: "1234" })).toThrow("PIN block format 0 needs the PAN");
    expect(() => encodePinBlock({ format: 3, pin: "1234", pan: "40000012345" })).toThrow(CryptoInputError);
    expect(() => decodePinBlock({ format: 0, block: "041234FFFFFFFFFF" })).toThrow(CryptoInputError);
  });

  it("never decodes a block under the wrong PAN to a PIN (format 0, fixed example)", () => {
    const block = encodePinBlock({ format: 0, pin: "1234", pan: "4000001234567899" });
    expect(() => decodePinBlock({ format: 0, block, pan: "4000009876543210" })).toThrow(CryptoInputError);
  });

  it("messages do not contain the block", () => {
    expect(() => decodePinBlock({ format: 2, block: "24123AFFFFFFFFFF" })).toThrow(
      /^PIN block has non-decimal/,
    );
  });
});

describe("enciphered PIN blocks", () => {
  it("round-trip formats 0-3 under double- and triple-length 3DES keys", () => {
    fc.assert(
      fc.property(fc.constantFrom<PinBlockFormat>(0, 1, 2, 3), pin, pan, tdesKey, (format, p, a, key) => {
        const block = encipherPinBlock({ format, pin: p, pan: a, key });
        expect(block).toHaveLength(8);
        expect(decipherPinBlock({ format, block, pan: a, key })).toBe(p);
      }),
      { numRuns: 200 },
    );
  });

  it("round-trip format 4 under AES-128/192/256, including short PANs", () => {
    fc.assert(
      fc.property(pin, fc.stringMatching(/^[0-9]{1,19}$/), aesKey, (p, a, key) => {
        const block = encipherPinBlock({ format: 4, pin: p, pan: a, key });
        expect(block).toHaveLength(16);
        expect(decipherPinBlock({ format: 4, block: toHex(block), pan: a, key })).toBe(p);
      }),
      { numRuns: 200 },
    );
  });

  it("format 4 binds the PAN: a different PAN or key does not yield the PIN", () => {
    const key = randomBytes(16);
    const block = encipherPinBlock({ format: 4, pin: "1234", pan: "4000001234567899", key });
    expect(() => decipherPinBlock({ format: 4, block, pan: "4000001234567898", key })).toThrow(
      CryptoInputError,
    );
    expect(() =>
      decipherPinBlock({ format: 4, block, pan: "4000001234567899", key: randomBytes(16) }),
    ).toThrow(CryptoInputError);
  });

  it("rejects wrong key sizes and missing PANs", () => {
    expect(() =>
      encipherPinBlock({ format: 0, pin: "1234", pan: "4000001234567899", key: Buffer.alloc(8) }),
    ).toThrow(CryptoInputError);
    expect(() =>
      encipherPinBlock({ format: 0, pin: "1234", pan: "4000001234567899", key: Buffer.alloc(32) }),
    ).toThrow(CryptoInputError);
    expect(() =>
      encipherPinBlock({ format: 4, pin: "1234", pan: "4000001234567899", key: Buffer.alloc(20) }),
    ).toThrow(CryptoInputError);
    expect(() => encipherPinBlock({ format: 4, pin: "1234", key: Buffer.alloc(16) })).toThrow(
      CryptoInputError,
    );
    expect(() => decipherPinBlock({ format: 4, block: Buffer.alloc(16), key: Buffer.alloc(16) })).toThrow(
      CryptoInputError,
    );
    expect(() => decipherPinBlock({ format: 1, block: Buffer.alloc(16), key: Buffer.alloc(16) })).toThrow(
      CryptoInputError,
    );
  });
});
