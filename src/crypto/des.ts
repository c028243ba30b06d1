// DES/3DES helpers over node:crypto (OpenSSL) for the Visa and ISO 9564 algorithms in this folder.
// Invariant: every DES operation is OpenSSL's des-ede3-ecb without padding — no block cipher is
// written here; single DES is emulated as 3DES with K||K||K because OpenSSL 3 drops plain des-ecb.
// Reusable ciphers only ever see whole 8-byte blocks, so no partial block can linger between calls.

import { type BlockCipher, createEcbCipher } from "./block-cipher.js";
import { CryptoInputError } from "./errors.js";

export type { BlockCipher } from "./block-cipher.js";

export const DES_BLOCK_SIZE = 8;

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

function reusable(key24: Buffer): BlockCipher {
  // The key schedule is built once instead of on every CVV/PVV/PIN block (see block-cipher.ts).
  return createEcbCipher("des-ede3-ecb", key24, DES_BLOCK_SIZE, "DES");
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

/** One-off 3DES-ECB; prefer createTdesCipher when enciphering many blocks under the same key. */
export function tdesEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return createTdesCipher(key).encrypt(data);
}

export function tdesDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return createTdesCipher(key).decrypt(data);
}

export function desEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return createDesCipher(key).encrypt(data);
}

export function desDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return createDesCipher(key).decrypt(data);
}
