// Visa dCVV (dynamic CVV for contactless magstripe) with the ICC master key derived from an IMK-AC by
// EMV option A or option B, following jPOS JCESecurityModule semantics (the source of our vectors).
// Invariant: the per-card master key only exists inside one call and is never returned from a public
// function other than deriveIccMasterKey; all ciphers are OpenSSL 3DES via des.ts, SHA-1 via node:crypto.

import { createHash } from "node:crypto";
import { createVisaCvvCore, visaDecimalize } from "./cvv.js";
import { adjustDesParity, tdesEncrypt } from "./des.js";
import { CryptoInputError } from "./errors.js";
import { assertDigits, assertKeyLength, isHex } from "./hex.js";

export type MasterKeyDerivation = "A" | "B";

export interface IccMasterKeyInput {
  /** Issuer master key for application cryptograms (double-length, 16 bytes). */
  imk: Buffer;
  /** 12–19 digits. */
  pan: string;
  /** PAN sequence number, 2 digits (default "00"). */
  psn?: string;
  /** Default "A". */
  option?: MasterKeyDerivation;
}

export interface DcvvInput extends IccMasterKeyInput {
  /** YYMM. */
  expiry: string;
  /** 3 digits. */
  serviceCode: string;
  /** Application transaction counter, 4 hex digits. */
  atc: string;
}

/** BCD-packs digits, adding a leading 0 when the count is odd (EMV Book 2 A1.4). */
function packDigits(digits: string): Buffer {
  return Buffer.from(digits.length % 2 === 0 ? digits : `0${digits}`, "hex");
}

/**
 * The 16-digit derivation data Y. Option A: the rightmost 16 digits of PAN || PSN, zero-padded left.
 * Option B: SHA-1 over the BCD-packed PAN || PSN, Visa-decimalised, first 16 digits. Like jPOS's dCVV
 * path (and unlike EMV's ARQC rule), option B hashes even when PAN || PSN fits in 16 digits.
 */
export function iccDerivationData(pan: string, psn: string, option: MasterKeyDerivation): Buffer {
  assertDigits(pan, "PAN", 12, 19);
  assertDigits(psn, "PAN sequence number", 2);
  if (option === "A") return Buffer.from(`${pan}${psn}`.slice(-16).padStart(16, "0"), "hex");
  if (option === "B") {
    const digest = createHash("sha1")
      .update(packDigits(`${pan}${psn}`))
      .digest();
    return Buffer.from(visaDecimalize(digest, 16), "hex");
  }
  throw new CryptoInputError("master key derivation option must be A or B");
}

/** ICC master key = 3DES(IMK, Y) || 3DES(IMK, Y XOR FF…FF), DES parity adjusted (EMV Book 2 A1.4.1). */
export function deriveIccMasterKey(input: IccMasterKeyInput): Buffer {
  assertKeyLength(input.imk, { allowed: [16], name: "IMK" });
  const y = iccDerivationData(input.pan, input.psn ?? "00", input.option ?? "A");
  const inverted = Buffer.from(y.map((b) => b ^ 0xff));
  return adjustDesParity(tdesEncrypt(input.imk, Buffer.concat([y, inverted])));
}

/**
 * dCVV: the Visa CVV algorithm under the ICC master key, over (ATC || PAN without its first four
 * digits) || expiry || service code — i.e. the ATC replaces the PAN's four leading digits.
 */
export function computeDcvv(input: DcvvInput): string {
  const { atc, expiry, serviceCode } = input;
  if (typeof atc !== "string" || atc.length !== 4 || !isHex(atc)) {
    throw new CryptoInputError("ATC must be 4 hex digits");
  }
  assertDigits(expiry, "expiry (YYMM)", 4);
  assertDigits(serviceCode, "service code", 3);
  const mk = deriveIccMasterKey(input);
  return createVisaCvvCore(mk)(atc.toUpperCase() + input.pan.slice(4), expiry, serviceCode);
}
