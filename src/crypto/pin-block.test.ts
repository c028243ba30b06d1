// ISO 9564 PIN blocks: round trips in every format and PIN length, random fill rules, malformed-block rejection.
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CryptoInputError,
  createPinBlockCipher,
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

describe("reused PIN block ciphers (createPinBlockCipher)", () => {
  const PAN = "4000001234567899";

  it("one cipher used many times gives the same blocks and PINs as a fresh one-off call", () => {
    fc.assert(
      fc.property(
        tdesKey,
        aesKey,
        fc.array(fc.tuple(fc.constantFrom<PinBlockFormat>(0, 1, 2, 3, 4), pin, pan)),
        (k3, k4, calls) => {
          const tdes = createPinBlockCipher(k3, "tdes");
          const aes = createPinBlockCipher(k4, "aes");
          for (const [format, p, a] of calls) {
            const [cipher, key] = format === 4 ? [aes, k4] : [tdes, k3];
            // Formats 1, 3 and 4 carry random fill: give both paths the same bytes.
            const fill = randomBytes(16);
            const random = (n: number) => fill.subarray(0, n);
            const block = cipher.encipher({ format, pin: p, pan: a, random });
            expect(block).toEqual(encipherPinBlock({ format, pin: p, pan: a, key, random }));
            expect(cipher.decipher({ format, block, pan: a })).toBe(p);
            expect(cipher.decipher({ format, block: toHex(block), pan: a })).toBe(
              decipherPinBlock({ format, block, pan: a, key }),
            );
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("ciphers of different keys, used in turn, never mix", () => {
    const keys = [randomBytes(16), randomBytes(24), randomBytes(16)];
    const aesKeys = [randomBytes(32), randomBytes(16), randomBytes(32)];
    const tdes = keys.map((k) => createPinBlockCipher(k, "tdes"));
    const aes = aesKeys.map((k) => createPinBlockCipher(k, "aes"));
    const blocks0 = keys.map((key, i) => encipherPinBlock({ format: 0, pin: `123${i}`, pan: PAN, key }));
    const blocks4 = aesKeys.map((key, i) => encipherPinBlock({ format: 4, pin: `987${i}`, pan: PAN, key }));
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 3; i++) {
        expect(tdes[i]?.decipher({ format: 0, block: blocks0[i] as Buffer, pan: PAN })).toBe(`123${i}`);
        expect(aes[i]?.decipher({ format: 4, block: blocks4[i] as Buffer, pan: PAN })).toBe(`987${i}`);
        // Under another key the block does not decode (a random format-4 block passes the checks with p < 1e-7).
        const j = (i + 1) % 3;
        expect(() => aes[j]?.decipher({ format: 4, block: blocks4[i] as Buffer, pan: PAN })).toThrow(
          CryptoInputError,
        );
      }
    }
  });

  it("stays correct after rejected blocks, PANs and formats (no state left behind)", () => {
    const key = randomBytes(16);
    const aesKeyBytes = randomBytes(32);
    const tdes = createPinBlockCipher(key, "tdes");
    const aes = createPinBlockCipher(aesKeyBytes, "aes");
    const good0 = encipherPinBlock({ format: 0, pin: "4321", pan: PAN, key });
    const good4 = encipherPinBlock({ format: 4, pin: "43210", pan: PAN, key: aesKeyBytes });
    const bad = [
      () => tdes.decipher({ format: 0, block: Buffer.alloc(7), pan: PAN }),
      () => tdes.decipher({ format: 0, block: "0011223344556G77", pan: PAN }),
      () => tdes.decipher({ format: 0, block: good0 }),
      () => tdes.decipher({ format: 0, block: good0, pan: "4000009876543210" }),
      () => tdes.decipher({ format: 4, block: good4, pan: PAN }),
      () => tdes.decipher({ format: 9 as PinBlockFormat, block: good0, pan: PAN }),
      () => aes.decipher({ format: 0, block: good0, pan: PAN }),
      () => aes.decipher({ format: 4, block: good4.subarray(0, 15), pan: PAN }),
      () => aes.decipher({ format: 4, block: good4, pan: "4000001234567898" }),
      () => aes.decipher({ format: 4, block: good4 }),
      () => aes.encipher({ format: 0, pin: "1234", pan: PAN }),
      () => tdes.encipher({ format: 4, pin: "1234", pan: PAN }),
    ];
    for (const call of bad) {
      expect(call).toThrow(CryptoInputError);
      expect(tdes.decipher({ format: 0, block: good0, pan: PAN })).toBe("4321");
      expect(aes.decipher({ format: 4, block: good4, pan: PAN })).toBe("43210");
    }
    expect(() => aes.encipher({ format: 0, pin: "1234", pan: PAN })).toThrow(
      "PIN block format 0 needs a 3DES key",
    );
    expect(() => tdes.decipher({ format: 4, block: good4, pan: PAN })).toThrow(
      "PIN block format 4 needs an AES key",
    );
  });

  it("does not read or write the caller's block and keeps its own key copy", () => {
    const key = randomBytes(32);
    const original = Buffer.from(key);
    const cipher = createPinBlockCipher(key, "aes");
    const block = encipherPinBlock({ format: 4, pin: "2468", pan: PAN, key: original });
    const copy = Buffer.from(block);
    key.fill(0);
    expect(cipher.decipher({ format: 4, block, pan: PAN })).toBe("2468");
    expect(cipher.decipher({ format: 4, block, pan: PAN })).toBe("2468");
    expect(block).toEqual(copy);
    const clear0 = encodePinBlock({ format: 0, pin: "1234", pan: PAN });
    const clearCopy = Buffer.from(clear0);
    expect(decodePinBlock({ format: 0, block: clear0, pan: PAN })).toBe("1234");
    expect(clear0).toEqual(clearCopy);
  });

  it("rejects wrong-length keys and unknown algorithms when the cipher is made", () => {
    for (const size of [0, 8, 15, 17, 32]) {
      expect(() => createPinBlockCipher(Buffer.alloc(size), "tdes")).toThrow(CryptoInputError);
    }
    for (const size of [0, 8, 15, 20, 33]) {
      expect(() => createPinBlockCipher(Buffer.alloc(size), "aes")).toThrow(CryptoInputError);
    }
    expect(() => createPinBlockCipher(Buffer.alloc(16), "des" as "tdes")).toThrow(CryptoInputError);
    expect(() => createPinBlockCipher("00".repeat(16) as unknown as Buffer, "aes")).toThrow(CryptoInputError);
    expect(() => createPinBlockCipher(Buffer.alloc(32), "tdes")).toThrow(/^PIN encryption key must be/);
    expect(() => createPinBlockCipher(Buffer.alloc(20), "aes")).toThrow(/^AES PIN key must be/);
  });
});
