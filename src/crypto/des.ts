// DES/3DES helpers over node:crypto (OpenSSL) for the Visa and ISO 9564 algorithms in this folder.
// Invariant: every DES operation is OpenSSL's des-ede3-ecb without padding — no block cipher is
// written here; single DES is emulated as 3DES with K||K||K because OpenSSL 3 drops plain des-ecb.
// Reusable ciphers only ever see whole 8-byte blocks, so no partial block can linger between calls.

import { type Cipher, createCipheriv, createDecipheriv, type Decipher } from "node:crypto";
import { CryptoInputError } from "./errors.js";

export const DES_BLOCK_SIZE = 8;

/** ECB over whole 8-byte blocks, with one key schedule kept for the life of the object. */
export interface BlockCipher {
  encrypt(data: Uint8Array): Buffer;
  decrypt(data: Uint8Array): Buffer;
}

/** Expands a double-length key A||B to the triple-length A||B||A OpenSSL expects; 24 bytes pass through. */
export function tripleLengthKey(key: Uint8Array): Buffer {
  if (key.length === 24) return Buffer.from(key);
  if (key.length === 16) return Buffer.concat([key, key.subarray(0, 8)]);
  throw new CryptoInputError("3DES key must be 16 or 24 bytes");
}

/** Sets odd parity in every byte (EMV-derived keys are parity-adjusted; DES ignores the parity bit). */
export function adjustDesParity(key: Uint8Array): Buffer {
  const out = Buffer.from(key);
  for (let i = 0; i < out.length; i++) {
    const b = out[i] as number;
    let ones = 0;
    for (let bit = 1; bit < 0x100; bit <<= 1) if (b & bit) ones++;
    out[i] = ones % 2 === 1 ? b : b ^ 1;
  }
  return out;
}

function assertBlocks(data: Uint8Array): void {
  if (data.length === 0 || data.length % DES_BLOCK_SIZE !== 0) {
    throw new CryptoInputError("DES data must be a whole number of 8-byte blocks");
  }
}

function newEncryptor(key24: Buffer): Cipher {
  return createCipheriv("des-ede3-ecb", key24, null).setAutoPadding(false);
}

function newDecryptor(key24: Buffer): Decipher {
  return createDecipheriv("des-ede3-ecb", key24, null).setAutoPadding(false);
}

function reusable(key24: Buffer): BlockCipher {
  // ECB without padding never buffers when fed whole blocks, so update() can be called forever
  // without final(): the key schedule is built once instead of on every CVV/PVV.
  let encryptor: Cipher | undefined;
  let decryptor: Decipher | undefined;
  return {
    encrypt(data) {
      assertBlocks(data);
      encryptor ??= newEncryptor(key24);
      return encryptor.update(data);
    },
    decrypt(data) {
      assertBlocks(data);
      decryptor ??= newDecryptor(key24);
      return decryptor.update(data);
    },
  };
}

/** A reusable 3DES-ECB cipher for a double- (A||B) or triple-length key. */
export function createTdesCipher(key: Uint8Array): BlockCipher {
  return reusable(tripleLengthKey(key));
}

/** A reusable single-DES-equivalent ECB cipher (3DES with K||K||K) for an 8-byte key. */
export function createDesCipher(key: Uint8Array): BlockCipher {
  if (key.length !== 8) throw new CryptoInputError("single DES key must be 8 bytes");
  return reusable(Buffer.concat([key, key, key]));
}

export function tdesEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  assertBlocks(data);
  return newEncryptor(tripleLengthKey(key)).update(data);
}

export function tdesDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  assertBlocks(data);
  return newDecryptor(tripleLengthKey(key)).update(data);
}

export function desEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return createDesCipher(key).encrypt(data);
}

export function desDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return createDesCipher(key).decrypt(data);
}
