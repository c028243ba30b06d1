// DES/3DES helpers: known single-DES answer, reusable-cipher equivalence, block and key-size checks.
import { createCipheriv } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  adjustDesParity,
  CryptoInputError,
  createDesCipher,
  createTdesCipher,
  desDecrypt,
  desEncrypt,
  tdesDecrypt,
  tdesEncrypt,
  toHex,
  tripleLengthKey,
} from "./index.js";

const hex = (h: string) => Buffer.from(h, "hex");

describe("DES helpers", () => {
  it("single DES matches the classic FIPS 81 / Stallings example", () => {
    // DES(133457799BBCDFF1, 0123456789ABCDEF) = 85E813540F0AB405
    expect(toHex(desEncrypt(hex("133457799BBCDFF1"), hex("0123456789ABCDEF")))).toBe("85E813540F0AB405");
    expect(toHex(desDecrypt(hex("133457799BBCDFF1"), hex("85E813540F0AB405")))).toBe("0123456789ABCDEF");
  });

  it("double-length 3DES is EDE with K1 = K3", () => {
    const k = hex("0123456789ABCDEFFEDCBA9876543210");
    expect(toHex(tripleLengthKey(k))).toBe("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF");
    const manual = createCipheriv("des-ede-ecb", k, null).setAutoPadding(false).update(Buffer.alloc(8));
    expect(tdesEncrypt(k, Buffer.alloc(8))).toEqual(manual);
    expect(toHex(tdesEncrypt(k, Buffer.alloc(8))).slice(0, 4)).toBe("08D7");
  });

  it("reusable ciphers give the same answers as one-shot calls, call after call", () => {
    const k = hex("0123456789ABCDEFFEDCBA98765432100011223344556677");
    const cipher = createTdesCipher(k);
    for (let i = 0; i < 50; i++) {
      const block = Buffer.alloc(8 * ((i % 3) + 1), i);
      const encrypted = cipher.encrypt(block);
      expect(encrypted).toEqual(tdesEncrypt(k, block));
      expect(cipher.decrypt(encrypted)).toEqual(block);
      expect(tdesDecrypt(k, encrypted)).toEqual(block);
    }
    const single = createDesCipher(hex("133457799BBCDFF1"));
    expect(toHex(single.encrypt(hex("0123456789ABCDEF")))).toBe("85E813540F0AB405");
    expect(toHex(single.encrypt(hex("0123456789ABCDEF")))).toBe("85E813540F0AB405");
  });

  it("rejects partial blocks and wrong key sizes (so a reused cipher never buffers)", () => {
    const cipher = createTdesCipher(Buffer.alloc(16, 1));
    expect(() => cipher.encrypt(Buffer.alloc(7))).toThrow(CryptoInputError);
    expect(() => cipher.decrypt(Buffer.alloc(0))).toThrow(CryptoInputError);
    expect(cipher.encrypt(Buffer.alloc(8))).toEqual(tdesEncrypt(Buffer.alloc(16, 1), Buffer.alloc(8)));
    expect(() => createTdesCipher(Buffer.alloc(8))).toThrow(CryptoInputError);
    expect(() => createDesCipher(Buffer.alloc(16))).toThrow(CryptoInputError);
    expect(() => tdesEncrypt(Buffer.alloc(32), Buffer.alloc(8))).toThrow(CryptoInputError);
  });

  it("adjusts parity to odd", () => {
    expect(toHex(adjustDesParity(hex("0001FEFF")))).toBe("0101FEFE");
  });
});
