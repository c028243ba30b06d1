// IBM 3624 PIN derivation: natural PIN, PIN offset, and PIN from offset.
// Invariant: the natural PIN is 3DES(PVK, validation data padded to 16 nibbles) run through a 16-digit
// decimalisation table; offsets are digit-wise (PIN − natural PIN) mod 10 over the leftmost
// `checkLength` digits, so PIN and offset always have the same length.

import { tdesEncrypt } from "./des.js";
import { CryptoInputError } from "./errors.js";
import { assertDigits, assertKeyLength, isHex } from "./hex.js";

export interface Ibm3624Params {
  /** Double- or triple-length 3DES key (16 or 24 bytes). */
  pvk: Buffer;
  /** 16 decimal digits: the digit each hex nibble 0–F maps to. */
  decimalizationTable: string;
  /** 1–16 hex digits (usually taken from the PAN), right-padded with `pad` to 16. */
  validationData: string;
  /** One hex digit used to pad the validation data. */
  pad: string;
}

function naturalDigits(params: Ibm3624Params, length: number): string {
  assertKeyLength(params.pvk, { allowed: [16, 24], name: "PVK" });
  assertDigits(params.decimalizationTable, "decimalisation table", 16);
  const { validationData, pad } = params;
  if (typeof validationData !== "string" || validationData.length < 1 || validationData.length > 16) {
    throw new CryptoInputError("validation data must be 1-16 hex digits");
  }
  if (!isHex(validationData)) throw new CryptoInputError("validation data must be 1-16 hex digits");
  if (typeof pad !== "string" || pad.length !== 1 || !isHex(pad)) {
    throw new CryptoInputError("pad must be a single hex digit");
  }
  if (!Number.isInteger(length) || length < 4 || length > 12) {
    throw new CryptoInputError("PIN check length must be an integer from 4 to 12");
  }
  const data = Buffer.from(validationData.padEnd(16, pad), "hex");
  const hex = tdesEncrypt(params.pvk, data).toString("hex");
  let out = "";
  for (let i = 0; i < length; i++) out += params.decimalizationTable[Number.parseInt(hex[i] as string, 16)];
  return out;
}

/** The natural (offset 0000…) PIN: the leftmost `checkLength` decimalised digits. */
export function ibm3624NaturalPin(params: Ibm3624Params & { checkLength: number }): string {
  return naturalDigits(params, params.checkLength);
}

/**
 * The offset turning the natural PIN into `pin`, over the leftmost `checkLength` digits (default: the
 * whole PIN). With a check length shorter than the PIN only those digits are bound to the offset.
 */
export function ibm3624Offset(params: Ibm3624Params & { pin: string; checkLength?: number }): string {
  assertDigits(params.pin, "PIN", 4, 12);
  const length = params.checkLength ?? params.pin.length;
  if (!Number.isInteger(length) || length > params.pin.length) {
    throw new CryptoInputError("PIN check length must not exceed the PIN length");
  }
  const natural = naturalDigits(params, length);
  let out = "";
  for (let i = 0; i < length; i++) {
    out += String((Number(params.pin[i]) - Number(natural[i]) + 10) % 10);
  }
  return out;
}

/** The customer PIN for an offset (natural PIN + offset, digit-wise mod 10). */
export function ibm3624PinFromOffset(
  params: Ibm3624Params & { offset: string; checkLength?: number },
): string {
  assertDigits(params.offset, "offset", 4, 12);
  const length = params.checkLength ?? params.offset.length;
  if (length !== params.offset.length) {
    throw new CryptoInputError("offset length must equal the PIN check length");
  }
  const natural = naturalDigits(params, length);
  let out = "";
  for (let i = 0; i < length; i++) out += String((Number(natural[i]) + Number(params.offset[i])) % 10);
  return out;
}
