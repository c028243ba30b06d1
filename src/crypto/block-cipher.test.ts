// Reusable ECB ciphers (block-cipher.ts): same answers as a fresh OpenSSL cipher call after call, independent of
// the caller's key Buffer, no mixing between keys, and the block and key-size checks that keep ECB from buffering.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CryptoInputError, createAesCipher, createTdesCipher, tdesEncrypt } from "./index.js";

const freshAes = (key: Buffer, data: Buffer, decrypt: boolean) =>
  (decrypt
    ? createDecipheriv(`aes-${key.length * 8}-ecb`, key, null)
    : createCipheriv(`aes-${key.length * 8}-ecb`, key, null)
  )
    .setAutoPadding(false)
    .update(data);

describe("reusable AES-ECB", () => {
  it.each([16, 24, 32])("AES-%i: many calls give the same blocks as a fresh cipher per call", (size) => {
    const key = randomBytes(size);
    const cipher = createAesCipher(key);
    for (let i = 0; i < 100; i++) {
      const data = randomBytes(16 * ((i % 4) + 1));
      const encrypted = cipher.encrypt(data);
      expect(encrypted).toEqual(freshAes(key, data, false));
      expect(cipher.decrypt(encrypted)).toEqual(data);
      expect(cipher.decrypt(data)).toEqual(freshAes(key, data, true));
    }
  });

  it("ciphers for different keys, used in turn, never mix", () => {
    const keys = [randomBytes(32), randomBytes(32), randomBytes(16)];
    const ciphers = keys.map((k) => createAesCipher(k));
    const data = randomBytes(16);
    for (let round = 0; round < 20; round++) {
      ciphers.forEach((cipher, i) => {
        expect(cipher.encrypt(data)).toEqual(freshAes(keys[i] as Buffer, data, false));
      });
    }
    expect(ciphers[0]?.encrypt(data)).not.toEqual(ciphers[1]?.encrypt(data));
  });

  it("keeps its own copy of the key: changing or zeroing the caller's Buffer later changes nothing", () => {
    const key = randomBytes(32);
    const original = Buffer.from(key);
    const data = randomBytes(16);
    const cipher = createAesCipher(key);
    expect(cipher.encrypt(data)).toEqual(freshAes(original, data, false));
    key.fill(0);
    // The decrypt direction is built lazily, after the caller zeroed its key.
    expect(cipher.decrypt(freshAes(original, data, false))).toEqual(data);
    expect(cipher.encrypt(data)).toEqual(freshAes(original, data, false));

    const tdesKey = randomBytes(16);
    const tdesOriginal = Buffer.from(tdesKey);
    const tdes = createTdesCipher(tdesKey);
    tdesKey.fill(0);
    expect(tdes.encrypt(Buffer.alloc(8))).toEqual(tdesEncrypt(tdesOriginal, Buffer.alloc(8)));
  });

  it("rejects wrong key sizes, partial blocks and empty data, and stays usable after a rejection", () => {
    for (const size of [0, 8, 15, 17, 20, 31, 33, 64]) {
      expect(() => createAesCipher(Buffer.alloc(size))).toThrow(CryptoInputError);
    }
    expect(() => createAesCipher(Buffer.alloc(20), "AES PIN key")).toThrow(/^AES PIN key must be 16 bytes/);
    const key = randomBytes(16);
    const cipher = createAesCipher(key);
    const data = randomBytes(16);
    for (const bad of [0, 8, 15, 17, 31]) {
      expect(() => cipher.encrypt(Buffer.alloc(bad))).toThrow(CryptoInputError);
      expect(() => cipher.decrypt(Buffer.alloc(bad))).toThrow(CryptoInputError);
      // Nothing of the rejected call lingers in the OpenSSL context.
      expect(cipher.encrypt(data)).toEqual(freshAes(key, data, false));
      expect(cipher.decrypt(data)).toEqual(freshAes(key, data, true));
    }
  });
});
