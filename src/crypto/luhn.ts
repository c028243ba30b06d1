// Luhn (mod 10) check digits for PANs.
// Invariant: only strings of decimal digits are accepted; anything else is a CryptoInputError rather
// than a silently wrong check digit.

import { CryptoInputError } from "./errors.js";

const DIGITS_RE = /^[0-9]+$/;

/** The check digit ("0"–"9") to append to `digits` so the whole number is Luhn-valid. */
export function luhnCheckDigit(digits: string): string {
  if (typeof digits !== "string" || !DIGITS_RE.test(digits)) {
    throw new CryptoInputError("Luhn payload must be a non-empty string of decimal digits");
  }
  // Walking from the right, the digit next to the (future) check digit is doubled first.
  let sum = 0;
  let double = true;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return String((10 - (sum % 10)) % 10);
}

/** True when `pan` is all digits (at least two) and its last digit is the Luhn check digit. */
export function isLuhnValid(pan: string): boolean {
  if (typeof pan !== "string" || pan.length < 2 || !DIGITS_RE.test(pan)) return false;
  return luhnCheckDigit(pan.slice(0, -1)) === pan.slice(-1);
}
