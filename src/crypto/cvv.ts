// Visa CVV method: CVV (magstripe), CVV2 (printed, service code 000) and iCVV (chip track data,
// service code 999) are the same computation under a double-length CVK A||B, only the service code differs.
// Invariant: a CVV is always derived on demand from PAN, expiry and service code (never stored); inputs are
// validated before any cipher call, and the hot path reuses one OpenSSL cipher per key half.

import type { BlockCipher } from "./block-cipher.js";
import { createDesCipher, createTdesCipher } from "./des.js";
import { CryptoInputError } from "./errors.js";
import { assertKeyLength } from "./hex.js";

/** Service code that turns the Visa CVV method into CVV2 (the value printed on the card). */
export const CVV2_SERVICE_CODE = "000";
/** Service code that turns the Visa CVV method into iCVV (the CVV in chip track-2 equivalent data). */
export const ICVV_SERVICE_CODE = "999";

export interface CvvInput {
  /** 12–19 digits. */
  pan: string;
  /** YYMM, 4 digits (not calendar-checked: published vectors use values such as 3333). */
  expiry: string;
  /** 3 digits; 000 for CVV2, 999 for iCVV. */
  serviceCode: string;
}

export interface ComputeCvvInput extends CvvInput {
  /** Double-length key A||B (16 bytes). */
  cvk: Buffer;
}

const DIGIT_CHARS = "0123456789";

/**
 * Visa decimalisation: the decimal nibbles of `bytes` in order, then (if more are needed) the hex
 * nibbles A–F in order with 10 subtracted. Returns the first `count` digits.
 */
export function visaDecimalize(bytes: Uint8Array, count: number): string {
  return decimalizeRange(bytes, 0, bytes.length, count);
}

function decimalizeRange(bytes: Uint8Array, start: number, end: number, count: number): string {
  let out = "";
  for (let i = start; i < end; i++) {
    const b = bytes[i] as number;
    const hi = b >> 4;
    if (hi < 10) {
      out += DIGIT_CHARS[hi];
      if (out.length === count) return out;
    }
    const lo = b & 15;
    if (lo < 10) {
      out += DIGIT_CHARS[lo];
      if (out.length === count) return out;
    }
  }
  // Second pass, only reached when the first produced fewer than `count` digits.
  for (let i = start; i < end; i++) {
    const b = bytes[i] as number;
    const hi = b >> 4;
    if (hi >= 10) {
      out += DIGIT_CHARS[hi - 10];
      if (out.length === count) return out;
    }
    const lo = b & 15;
    if (lo >= 10) {
      out += DIGIT_CHARS[lo - 10];
      if (out.length === count) return out;
    }
  }
  throw new CryptoInputError("not enough nibbles to decimalise");
}

function hexNibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}

/**
 * Packs `text` (upper-case hex nibbles) into `out` starting at nibble `at`. Returns the next nibble
 * index, or -1 if a character is not allowed (decimal only unless `hex`).
 */
export function packNibbles(text: string, out: Uint8Array, at: number, hex: boolean): number {
  let pos = at;
  for (let i = 0; i < text.length; i++) {
    const n = hexNibble(text.charCodeAt(i));
    if (n < 0 || (!hex && n > 9)) return -1;
    const idx = pos >> 1;
    out[idx] = (pos & 1) === 0 ? n << 4 : (out[idx] as number) | n;
    pos++;
  }
  return pos;
}

function validateCvvInput(input: CvvInput): void {
  const { pan, expiry, serviceCode } = input;
  if (typeof pan !== "string" || pan.length < 12 || pan.length > 19) {
    throw new CryptoInputError("PAN must be 12-19 decimal digits");
  }
  if (typeof expiry !== "string" || expiry.length !== 4) {
    throw new CryptoInputError("expiry must be 4 decimal digits (YYMM)");
  }
  if (typeof serviceCode !== "string" || serviceCode.length !== 3) {
    throw new CryptoInputError("service code must be 3 decimal digits");
  }
}

/**
 * Writes the 16-byte CVV input block (PAN || expiry || service code, right-padded with zero nibbles)
 * into `block`. `accountHex` lets dCVV put its ATC (hex) where the PAN's first digits were.
 */
function fillCvvBlock(
  block: Uint8Array,
  account: string,
  expiry: string,
  serviceCode: string,
  accountHex: boolean,
) {
  // A plain loop: Buffer#fill costs more than the whole packing for 16 bytes.
  for (let i = 0; i < 16; i++) block[i] = 0;
  let pos = packNibbles(account, block, 0, accountHex);
  if (pos < 0) throw new CryptoInputError("PAN must be 12-19 decimal digits");
  pos = packNibbles(expiry, block, pos, false);
  if (pos < 0) throw new CryptoInputError("expiry must be 4 decimal digits (YYMM)");
  pos = packNibbles(serviceCode, block, pos, false);
  if (pos < 0) throw new CryptoInputError("service code must be 3 decimal digits");
}

/**
 * A CVK as the two ECB block ciphers the Visa method runs: step 1 is single DES under key A (`a`); steps 2–4
 * (E_A, D_B, E_A) are exactly one 3DES-EDE under A||B (`ab`). In node:crypto they are built from the key bytes
 * (cvkCiphers); a PKCS#11 token runs them with C_Encrypt on its own key objects, the key never leaving it.
 */
export interface CvkCiphers {
  a: Pick<BlockCipher, "encrypt">;
  ab: Pick<BlockCipher, "encrypt">;
}

/** The CVK's two ciphers over node:crypto, each with its key schedule built once. */
export function cvkCiphers(cvk: Buffer): CvkCiphers {
  assertKeyLength(cvk, { allowed: [16], name: "CVK" });
  return { a: createDesCipher(cvk.subarray(0, 8)), ab: createTdesCipher(cvk) };
}

function createCore({ a: keyA, ab: keyAB }: CvkCiphers, accountHex: boolean) {
  const block = Buffer.alloc(16);
  const left = block.subarray(0, 8);
  return (account: string, expiry: string, serviceCode: string): string => {
    fillCvvBlock(block, account, expiry, serviceCode, accountHex);
    const mid = keyA.encrypt(left);
    for (let i = 0; i < 8; i++) mid[i] = (mid[i] as number) ^ (block[i + 8] as number);
    return decimalizeRange(keyAB.encrypt(mid), 0, 8, 3);
  };
}

/**
 * The Visa CVV computation on raw fields, for dCVV: its account field carries hex ATC digits in place
 * of the PAN's first four digits, so it is not validated as a PAN here.
 */
export function createVisaCvvCore(
  cvk: Buffer,
): (account: string, expiry: string, serviceCode: string) => string {
  return createCore(cvkCiphers(cvk), true);
}

/**
 * A CVV function bound to one CVK: builds the two OpenSSL key schedules once and reuses them for every
 * call (the authorisation hot path). Throws CryptoInputError on malformed input.
 */
export function createCvvGenerator(cvk: Buffer): (input: CvvInput) => string {
  return createCvvGeneratorOver(cvkCiphers(cvk));
}

/** A CVV function over a CVK's ciphers (cvkCiphers, or a token's C_Encrypt); same checks and result. */
export function createCvvGeneratorOver(ciphers: CvkCiphers): (input: CvvInput) => string {
  const core = createCore(ciphers, false);
  return (input) => {
    validateCvvInput(input);
    return core(input.pan, input.expiry, input.serviceCode);
  };
}

/** One-off CVV; prefer createCvvGenerator when computing many under the same key. */
export function computeCvv(input: ComputeCvvInput): string {
  return createCvvGenerator(input.cvk)(input);
}

/** Blocks per OpenSSL call in the batch path: large enough to amortise call overhead, bounded memory. */
const BATCH_CHUNK = 4096;

/**
 * Batch packing: writes `text` as nibbles starting at nibble `pos` of item `j`, whose left half lives
 * in `lefts` and right half in `rights` (separate arrays so each cipher step is one contiguous call).
 */
function packSplit(text: string, pos: number, lefts: Uint8Array, rights: Uint8Array, at: number): number {
  let p = pos;
  for (let i = 0; i < text.length; i++) {
    const n = text.charCodeAt(i) - 48;
    if (n < 0 || n > 9) return -1;
    const b = p >> 1;
    const target = b < 8 ? lefts : rights;
    const idx = at + (b & 7);
    target[idx] = (p & 1) === 0 ? n << 4 : (target[idx] as number) | n;
    p++;
  }
  return p;
}

function xorInto(target: Buffer, source: Buffer, length: number): void {
  if (target.byteOffset % 4 === 0 && source.byteOffset % 4 === 0 && length % 4 === 0) {
    const t = new Uint32Array(target.buffer, target.byteOffset, length / 4);
    const s = new Uint32Array(source.buffer, source.byteOffset, length / 4);
    for (let i = 0; i < t.length; i++) t[i] = (t[i] as number) ^ (s[i] as number);
    return;
  }
  for (let i = 0; i < length; i++) target[i] = (target[i] as number) ^ (source[i] as number);
}

/**
 * CVVs for many inputs under one CVK (e.g. a scheduled rotation): each of the two cipher steps runs
 * once per chunk of up to 4096 inputs instead of once per input. Results are in input order; one
 * malformed input rejects the whole batch (no partial result is returned).
 */
export function computeCvvBatch(cvk: Buffer, inputs: readonly CvvInput[]): string[] {
  assertKeyLength(cvk, { allowed: [16], name: "CVK" });
  if (inputs.length === 0) return [];
  for (const input of inputs) validateCvvInput(input);
  return computeCvvBatchOver(cvkCiphers(cvk), inputs);
}

/** computeCvvBatch over a CVK's ciphers: each cipher step is one call over a whole chunk of blocks. */
export function computeCvvBatchOver(
  { a: keyA, ab: keyAB }: CvkCiphers,
  inputs: readonly CvvInput[],
): string[] {
  const results: string[] = new Array(inputs.length);
  if (inputs.length === 0) return results;
  for (const input of inputs) validateCvvInput(input);
  const chunk = Math.min(BATCH_CHUNK, inputs.length);
  const lefts = Buffer.alloc(chunk * 8);
  const rights = Buffer.alloc(chunk * 8);
  for (let start = 0; start < inputs.length; start += chunk) {
    const count = Math.min(chunk, inputs.length - start);
    lefts.fill(0);
    rights.fill(0);
    for (let j = 0; j < count; j++) {
      const input = inputs[start + j] as CvvInput;
      const at = j * 8;
      let pos = packSplit(input.pan, 0, lefts, rights, at);
      if (pos < 0) throw new CryptoInputError("PAN must be 12-19 decimal digits");
      pos = packSplit(input.expiry, pos, lefts, rights, at);
      if (pos < 0) throw new CryptoInputError("expiry must be 4 decimal digits (YYMM)");
      if (packSplit(input.serviceCode, pos, lefts, rights, at) < 0) {
        throw new CryptoInputError("service code must be 3 decimal digits");
      }
    }
    const mid = keyA.encrypt(count === chunk ? lefts : lefts.subarray(0, count * 8));
    xorInto(mid, rights, count * 8);
    const out = keyAB.encrypt(mid);
    for (let j = 0; j < count; j++) results[start + j] = decimalizeRange(out, j * 8, j * 8 + 8, 3);
  }
  return results;
}
