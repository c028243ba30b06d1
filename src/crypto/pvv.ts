// Visa PIN Verification Value (PVV) under a double-length PVK A||B.
// Invariant: the PIN itself is never stored or returned — only the 4-digit PVV derived from the
// transformed security parameter (TSP); inputs are validated before the reusable 3DES cipher sees them.

import type { BlockCipher } from "./block-cipher.js";
import { packNibbles, visaDecimalize } from "./cvv.js";
import { createTdesCipher } from "./des.js";
import { CryptoInputError } from "./errors.js";
import { assertDigits, assertKeyLength } from "./hex.js";

export interface PvvInput {
  /** PIN verification key index, one digit 0–9 (schemes use 1–6). */
  pvki: string | number;
  /** 12–19 digits. */
  pan: string;
  /** 4–12 digits; only the 4 leftmost enter the PVV. */
  pin: string;
}

export interface ComputePvvInput extends PvvInput {
  /** Double-length key A||B (16 bytes). */
  pvk: Buffer;
}

function normalisePvki(pvki: string | number): string {
  const text = typeof pvki === "number" ? String(pvki) : pvki;
  if (typeof text !== "string" || !/^[0-9]$/.test(text)) {
    throw new CryptoInputError("PVKI must be a single digit 0-9");
  }
  return text;
}

/**
 * TSP = the 11 rightmost PAN digits excluding the check digit, the PVKI, and the 4 leftmost PIN digits.
 * For a 12-digit PAN that is every digit but the check digit (jPOS: rightmost 12 excluding the check
 * digit, minus the first — the same 11 digits).
 */
export function pvvTsp(input: PvvInput): string {
  assertDigits(input.pan, "PAN", 12, 19);
  assertDigits(input.pin, "PIN", 4, 12);
  return input.pan.slice(-12, -1) + normalisePvki(input.pvki) + input.pin.slice(0, 4);
}

/**
 * A PVV function bound to one PVK, reusing one OpenSSL 3DES cipher and one 8-byte TSP block for every call
 * (packed, enciphered and wiped synchronously, so calls cannot interleave and no PIN digits stay behind).
 */
export function createPvvGenerator(pvk: Buffer): (input: PvvInput) => string {
  assertKeyLength(pvk, { allowed: [16], name: "PVK" });
  return createPvvGeneratorOver(createTdesCipher(pvk));
}

/** A PVV function over a PVK's 3DES-ECB encryption (node:crypto, or a token's C_Encrypt on its key object). */
export function createPvvGeneratorOver(cipher: Pick<BlockCipher, "encrypt">): (input: PvvInput) => string {
  const block = Buffer.alloc(8);
  return (input) => {
    // pvvTsp has validated every digit, so packing cannot fail.
    packNibbles(pvvTsp(input), block, 0, false);
    const enciphered = cipher.encrypt(block);
    for (let i = 0; i < 8; i++) block[i] = 0;
    return visaDecimalize(enciphered, 4);
  };
}

export function computePvv(input: ComputePvvInput): string {
  return createPvvGenerator(input.pvk)(input);
}
