// Reusable ECB block ciphers over node:crypto (OpenSSL): the one mechanism every algorithm in this folder uses
// to keep a key schedule per key instead of building a cipher per call. Invariant: a reusable cipher only ever
// sees whole blocks, so ECB without padding never buffers and no partial block can linger between calls; the
// key bytes are copied when the cipher is made, so the object is independent of the caller's Buffer and lives
// (with its key schedule) exactly as long as the caller keeps the object.

import { type Cipher, createCipheriv, createDecipheriv, type Decipher } from "node:crypto";
import { CryptoInputError } from "./errors.js";
import { assertKeyLength } from "./hex.js";

export const AES_BLOCK_SIZE = 16;

/** ECB over whole blocks, with one key schedule per direction kept for the life of the object. */
export interface BlockCipher {
  encrypt(data: Uint8Array): Buffer;
  decrypt(data: Uint8Array): Buffer;
}

/**
 * A reusable ECB cipher for an OpenSSL algorithm name (e.g. "des-ede3-ecb", "aes-256-ecb"). `key` must already
 * be a private copy of the right length; `label` names the cipher in errors ("DES", "AES"). Each direction's
 * OpenSSL context is built on first use, then update() is called forever without final().
 */
export function createEcbCipher(
  algorithm: string,
  key: Buffer,
  blockSize: number,
  label: string,
): BlockCipher {
  let encryptor: Cipher | undefined;
  let decryptor: Decipher | undefined;
  const assertBlocks = (data: Uint8Array) => {
    if (data.length === 0 || data.length % blockSize !== 0) {
      throw new CryptoInputError(`${label} data must be a whole number of ${blockSize}-byte blocks`);
    }
  };
  return {
    encrypt(data) {
      assertBlocks(data);
      encryptor ??= createCipheriv(algorithm, key, null).setAutoPadding(false);
      return encryptor.update(data);
    },
    decrypt(data) {
      assertBlocks(data);
      decryptor ??= createDecipheriv(algorithm, key, null).setAutoPadding(false);
      return decryptor.update(data);
    },
  };
}

/** A reusable AES-ECB cipher for a 16-, 24- or 32-byte key; `name` labels the key in the length error. */
export function createAesCipher(key: Buffer, name = "AES key"): BlockCipher {
  assertKeyLength(key, { allowed: [16, 24, 32], name });
  return createEcbCipher(`aes-${key.length * 8}-ecb`, Buffer.from(key), AES_BLOCK_SIZE, "AES");
}
