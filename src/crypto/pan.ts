// PAN generation and display helpers.
// Invariant: generated PANs are Luhn-valid and their random digits come from node:crypto's CSPRNG
// (crypto.randomInt) unless a test injects its own source; masking never reveals more than the
// first 6 and last 4 digits.

import { randomInt } from "node:crypto";
import { CryptoInputError } from "./errors.js";
import { assertDigits } from "./hex.js";
import { luhnCheckDigit } from "./luhn.js";

const defaultRandomDigit = (): number => randomInt(10);

/**
 * A Luhn-valid PAN of `length` digits (12–19) starting with `bin` (6–11 digits); the digits between
 * the BIN and the check digit come from `randomDigit` (default: crypto.randomInt).
 */
export function generatePan(
  bin: string,
  length: number,
  randomDigit: () => number = defaultRandomDigit,
): string {
  assertDigits(bin, "BIN", 6, 11);
  if (!Number.isInteger(length) || length < 12 || length > 19) {
    throw new CryptoInputError("PAN length must be an integer from 12 to 19");
  }
  if (length < bin.length + 1) throw new CryptoInputError("PAN length must leave room for the check digit");
  let body = bin;
  while (body.length < length - 1) {
    const d = randomDigit();
    if (!Number.isInteger(d) || d < 0 || d > 9) {
      throw new CryptoInputError("random digit source must return integers 0-9");
    }
    body += String(d);
  }
  return body + luhnCheckDigit(body);
}

/** First 6 and last 4 digits with `*` in between, e.g. 400000******1234 (PCI DSS display rule). */
export function maskPan(pan: string): string {
  assertDigits(pan, "PAN", 12, 19);
  return `${pan.slice(0, 6)}${"*".repeat(pan.length - 10)}${pan.slice(-4)}`;
}

export function last4(pan: string): string {
  assertDigits(pan, "PAN", 12, 19);
  return pan.slice(-4);
}
