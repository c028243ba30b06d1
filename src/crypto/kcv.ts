// Key check values (KCVs), AES-CMAC (RFC 4493) and TDES-CMAC (SP 800-38B) on node:crypto.
// Invariant: a KCV is a short prefix of a one-way computation over a constant (3DES-ECB of zeros, or
// AES-CMAC of 16 zero bytes, as in ANSI X9.24 / X9.143) — it identifies a key without revealing it;
// only AES and 3DES from OpenSSL are used, the CMAC subkey arithmetic is done here.

import { createCipheriv } from "node:crypto";
import { createAesCipher } from "./block-cipher.js";
import { tdesEncrypt, tripleLengthKey } from "./des.js";
import { CryptoInputError } from "./errors.js";
import { assertKeyLength, toHex } from "./hex.js";

export type KcvAlgorithm = "tdes" | "aes";

const AES_BLOCK = 16;
const DES_BLOCK = 8;

/**
 * Left shift by one bit of a block, XOR Rb into the last byte when the top bit fell out (SP 800-38B §5.3:
 * Rb = 0x87 for 128-bit blocks, 0x1B for 64-bit blocks).
 */
function doubleBlock(block: Buffer): Buffer {
  const size = block.length;
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) {
    const next = i + 1 < size ? (block[i + 1] as number) : 0;
    out[i] = (((block[i] as number) << 1) | (next >> 7)) & 0xff;
  }
  if (((block[0] as number) & 0x80) !== 0)
    out[size - 1] = (out[size - 1] as number) ^ (size === 16 ? 0x87 : 0x1b);
  return out;
}

/** CMAC (SP 800-38B) over a block cipher given as its ECB encryption of one block and its CBC algorithm. */
function cmac(
  encryptBlock: (block: Buffer) => Buffer,
  cbc: (data: Buffer) => Buffer,
  size: number,
  message: Uint8Array,
): Buffer {
  const k1 = doubleBlock(encryptBlock(Buffer.alloc(size)));
  const k2 = doubleBlock(k1);
  const complete = message.length > 0 && message.length % size === 0;
  const blocks = complete ? message.length / size : Math.floor(message.length / size) + 1;
  const data = Buffer.alloc(blocks * size);
  data.set(message);
  if (!complete) data[message.length] = 0x80;
  const subkey = complete ? k1 : k2;
  const lastAt = (blocks - 1) * size;
  for (let i = 0; i < size; i++) data[lastAt + i] = (data[lastAt + i] as number) ^ (subkey[i] as number);
  // CBC with a zero IV is the CMAC chain; its last ciphertext block is the tag.
  return cbc(data).subarray(lastAt, lastAt + size);
}

/** AES-CMAC (RFC 4493 / NIST SP 800-38B) with a 16-, 24- or 32-byte key; returns the full 16-byte tag. */
export function aesCmac(key: Buffer, message: Uint8Array): Buffer {
  const ecb = createAesCipher(key, "AES key");
  return cmac(
    (block) => ecb.encrypt(block),
    (data) =>
      createCipheriv(`aes-${key.length * 8}-cbc`, key, Buffer.alloc(AES_BLOCK))
        .setAutoPadding(false)
        .update(data),
    AES_BLOCK,
    message,
  );
}

/**
 * TDES-CMAC (NIST SP 800-38B with the 64-bit block of TDEA) under a double- or triple-length key; returns the
 * full 8-byte tag. TR-31 version B derives its keys and computes its MAC with it.
 */
export function tdesCmac(key: Buffer, message: Uint8Array): Buffer {
  const key24 = tripleLengthKey(key);
  return cmac(
    (block) => tdesEncrypt(key24, block),
    (data) =>
      createCipheriv("des-ede3-cbc", key24, Buffer.alloc(DES_BLOCK)).setAutoPadding(false).update(data),
    DES_BLOCK,
    message,
  );
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
