// Key check values (KCVs) and AES-CMAC (RFC 4493) on node:crypto.
// Invariant: a KCV is a short prefix of a one-way computation over a constant (3DES-ECB of zeros, or
// AES-CMAC of 16 zero bytes, as in ANSI X9.24 / X9.143) — it identifies a key without revealing it;
// only AES and 3DES from OpenSSL are used, the CMAC subkey arithmetic is done here.

import { createCipheriv } from "node:crypto";
import { createAesCipher } from "./block-cipher.js";
import { tdesEncrypt } from "./des.js";
import { CryptoInputError } from "./errors.js";
import { assertKeyLength, toHex } from "./hex.js";

export type KcvAlgorithm = "tdes" | "aes";

const AES_BLOCK = 16;

/** Left shift by one bit of a 16-byte block, XOR 0x87 into the last byte when the top bit fell out. */
function doubleBlock(block: Buffer): Buffer {
  const out = Buffer.alloc(AES_BLOCK);
  for (let i = 0; i < AES_BLOCK; i++) {
    const next = i + 1 < AES_BLOCK ? (block[i + 1] as number) : 0;
    out[i] = (((block[i] as number) << 1) | (next >> 7)) & 0xff;
  }
  if (((block[0] as number) & 0x80) !== 0) out[AES_BLOCK - 1] = (out[AES_BLOCK - 1] as number) ^ 0x87;
  return out;
}

/** AES-CMAC (RFC 4493 / NIST SP 800-38B) with a 16-, 24- or 32-byte key; returns the full 16-byte tag. */
export function aesCmac(key: Buffer, message: Uint8Array): Buffer {
  const k1 = doubleBlock(createAesCipher(key, "AES key").encrypt(Buffer.alloc(AES_BLOCK)));
  const k2 = doubleBlock(k1);
  const complete = message.length > 0 && message.length % AES_BLOCK === 0;
  const blocks = complete ? message.length / AES_BLOCK : Math.floor(message.length / AES_BLOCK) + 1;
  const data = Buffer.alloc(blocks * AES_BLOCK);
  data.set(message);
  if (!complete) data[message.length] = 0x80;
  const subkey = complete ? k1 : k2;
  const lastAt = (blocks - 1) * AES_BLOCK;
  for (let i = 0; i < AES_BLOCK; i++) data[lastAt + i] = (data[lastAt + i] as number) ^ (subkey[i] as number);
  // CBC with a zero IV is the CMAC chain; its last ciphertext block is the tag.
  const cbc = createCipheriv(`aes-${key.length * 8}-cbc`, key, Buffer.alloc(AES_BLOCK)).setAutoPadding(false);
  return cbc.update(data).subarray(lastAt, lastAt + AES_BLOCK);
}

/**
 * The KCV as upper-case hex: tdes = first `length` bytes of 3DES-ECB(key, 8 zero bytes) for a 16- or
 * 24-byte key (1–8 bytes); aes = first `length` bytes of AES-CMAC(key, 16 zero bytes) (1–16 bytes).
 */
export function keyCheckValue(key: Buffer, algorithm: KcvAlgorithm, length = 3): string {
  if (algorithm === "tdes") {
    assertKeyLength(key, { allowed: [16, 24], name: "3DES key" });
    if (!Number.isInteger(length) || length < 1 || length > 8) {
      throw new CryptoInputError("3DES KCV length must be 1-8 bytes");
    }
    return toHex(tdesEncrypt(key, Buffer.alloc(8)).subarray(0, length));
  }
  if (algorithm === "aes") {
    assertKeyLength(key, { allowed: [16, 24, 32], name: "AES key" });
    if (!Number.isInteger(length) || length < 1 || length > 16) {
      throw new CryptoInputError("AES KCV length must be 1-16 bytes");
    }
    return toHex(aesCmac(key, Buffer.alloc(AES_BLOCK)).subarray(0, length));
  }
  throw new CryptoInputError("KCV algorithm must be tdes or aes");
}
