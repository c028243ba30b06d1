// ISO 9564-1 PIN blocks: formats 0–3 (8-byte, enciphered with 3DES) and format 4 (16-byte, AES).
// Invariants: random fill (formats 1, 3, 4) comes from node:crypto randomBytes unless a test injects a
// source; decoding checks control field, PIN length, PIN digits and fill rules and throws
// CryptoInputError on any deviation, so a malformed block never decodes to a (wrong) PIN.

import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { tdesDecrypt, tdesEncrypt } from "./des.js";
import { CryptoInputError } from "./errors.js";
import { assertDigits, assertKeyLength, parseHex, xorBytes } from "./hex.js";

export type PinBlockFormat = 0 | 1 | 2 | 3 | 4;
/** Returns `size` random bytes; injectable so tests can reproduce published vectors. */
export type RandomSource = (size: number) => Buffer;

export interface EncodePinBlockInput {
  format: PinBlockFormat;
  /** 4–12 digits. */
  pin: string;
  /** Needed by formats 0 and 3 (12–19 digits); ignored by 1, 2 and the clear format-4 PIN field. */
  pan?: string;
  random?: RandomSource;
}

export interface DecodePinBlockInput {
  format: PinBlockFormat;
  /** Bytes or hex: 8 bytes for formats 0–3, 16 bytes for format 4. */
  block: Buffer | string;
  pan?: string;
}

const FORMATS: readonly number[] = [0, 1, 2, 3, 4];

function assertFormat(format: number): asserts format is PinBlockFormat {
  if (!FORMATS.includes(format)) throw new CryptoInputError("PIN block format must be 0, 1, 2, 3 or 4");
}

function requirePan(pan: string | undefined, format: PinBlockFormat): string {
  if (pan === undefined) throw new CryptoInputError(`PIN block format ${format} needs the PAN`);
  if (format === 4) assertDigits(pan, "PAN", 1, 19);
  else assertDigits(pan, "PAN", 12, 19);
  return pan;
}

/** Formats 0 and 3: 0000 + the 12 rightmost PAN digits excluding the check digit (zero-padded left). */
export function iso0PanField(pan: string): Buffer {
  assertDigits(pan, "PAN", 12, 19);
  return Buffer.from(`0000${pan.slice(0, -1).slice(-12).padStart(12, "0")}`, "hex");
}

/**
 * Format 4: one nibble M = PAN length − 12 (0 when shorter), the PAN left-padded with zeros to 12
 * digits, then zero nibbles up to 16 bytes.
 */
export function iso4PanField(pan: string): Buffer {
  assertDigits(pan, "PAN", 1, 19);
  const m = Math.max(0, pan.length - 12);
  return Buffer.from(`${m.toString(16)}${pan.padStart(12, "0")}`.padEnd(32, "0"), "hex");
}

function fillNibbles(format: PinBlockFormat, count: number, random: RandomSource): string {
  if (format === 0 || format === 2) return "F".repeat(count);
  if (format === 4) return "A".repeat(count);
  if (format === 1) {
    const bytes = random(count);
    if (!Buffer.isBuffer(bytes) || bytes.length < count) {
      throw new CryptoInputError("random source returned too few bytes");
    }
    let out = "";
    for (let i = 0; i < count; i++) out += ((bytes[i] ?? 0) & 0x0f).toString(16);
    return out.toUpperCase();
  }
  // Format 3 fill is uniform over A–F: reject bytes >= 252 so that byte % 6 is unbiased.
  let out = "";
  for (let round = 0; out.length < count; round++) {
    if (round > 64) throw new CryptoInputError("random source did not yield usable fill bytes");
    for (const b of random(count)) {
      if (b < 252 && out.length < count) out += (10 + (b % 6)).toString(16).toUpperCase();
    }
  }
  return out;
}

/**
 * The clear block: 8 bytes for formats 0–3 (formats 0 and 3 already XORed with the PAN field) or, for
 * format 4, the 16-byte plain PIN field (control 4, length, PIN, A-fill, 8 random bytes).
 */
export function encodePinBlock(input: EncodePinBlockInput): Buffer {
  const { format, pin } = input;
  assertFormat(format);
  assertDigits(pin, "PIN", 4, 12);
  const random = input.random ?? randomBytes;
  const field = `${format}${pin.length.toString(16).toUpperCase()}${pin}`;
  const nibbles = field + fillNibbles(format, 16 - field.length, random);
  const block = Buffer.from(nibbles, "hex");
  if (format === 4) {
    const tail = random(8);
    if (!Buffer.isBuffer(tail) || tail.length !== 8)
      throw new CryptoInputError("random source must return 8 bytes");
    return Buffer.concat([block, tail]);
  }
  if (format === 0 || format === 3) return xorBytes(block, iso0PanField(requirePan(input.pan, format)));
  return block;
}

function toBlock(block: Buffer | string, format: PinBlockFormat): Buffer {
  const size = format === 4 ? 16 : 8;
  const bytes = typeof block === "string" ? parseHex(block, { name: "PIN block" }) : Buffer.from(block);
  if (bytes.length !== size) {
    throw new CryptoInputError(`format ${format} PIN block must be ${size} bytes (${size * 2} hex digits)`);
  }
  return bytes;
}

function fillAllowed(format: PinBlockFormat, nibble: string): boolean {
  switch (format) {
    case 0:
    case 2:
      return nibble === "F";
    case 1:
      return true;
    case 3:
      return nibble >= "A" && nibble <= "F";
    case 4:
      return nibble === "A";
  }
}

/** Reads the PIN out of a clear block; throws CryptoInputError if any field breaks the format's rules. */
export function decodePinBlock(input: DecodePinBlockInput): string {
  const { format } = input;
  assertFormat(format);
  let block = toBlock(input.block, format);
  if (format === 0 || format === 3) block = xorBytes(block, iso0PanField(requirePan(input.pan, format)));
  // Only the first 8 bytes carry the PIN; format 4's second half is random and unchecked.
  const nibbles = block.subarray(0, 8).toString("hex").toUpperCase();
  if (nibbles[0] !== String(format)) {
    throw new CryptoInputError(`PIN block control field does not match format ${format}`);
  }
  const length = Number.parseInt(nibbles[1] as string, 16);
  if (length < 4 || length > 12) throw new CryptoInputError("PIN block has an invalid PIN length");
  const pin = nibbles.slice(2, 2 + length);
  if (!/^[0-9]+$/.test(pin)) throw new CryptoInputError("PIN block has non-decimal PIN digits");
  for (const nibble of nibbles.slice(2 + length)) {
    if (!fillAllowed(format, nibble))
      throw new CryptoInputError(`PIN block fill breaks the format ${format} rules`);
  }
  return pin;
}

function aesCipherName(key: Buffer): string {
  assertKeyLength(key, { allowed: [16, 24, 32], name: "AES PIN key" });
  return `aes-${key.length * 8}-ecb`;
}

function aesEcb(key: Buffer, data: Buffer, decrypt: boolean): Buffer {
  const name = aesCipherName(key);
  const cipher = decrypt ? createDecipheriv(name, key, null) : createCipheriv(name, key, null);
  cipher.setAutoPadding(false);
  return cipher.update(data);
}

export interface EncipherPinBlockInput extends EncodePinBlockInput {
  /** Formats 0–3: 3DES key (16 or 24 bytes). Format 4: AES key (16, 24 or 32 bytes). */
  key: Buffer;
}

export interface DecipherPinBlockInput extends DecodePinBlockInput {
  key: Buffer;
}

/**
 * Formats 0–3: 3DES-ECB of the clear block. Format 4 (ISO 9564-4 / X9.24-3):
 * AES(K, AES(K, PIN field) XOR PAN field) — the PAN is bound inside the encipherment.
 */
export function encipherPinBlock(input: EncipherPinBlockInput): Buffer {
  assertFormat(input.format);
  if (input.format === 4) {
    const panField = iso4PanField(requirePan(input.pan, 4));
    aesCipherName(input.key);
    const pinField = encodePinBlock(input);
    return aesEcb(input.key, xorBytes(aesEcb(input.key, pinField, false), panField), false);
  }
  assertKeyLength(input.key, { allowed: [16, 24], name: "PIN encryption key" });
  return tdesEncrypt(input.key, encodePinBlock(input));
}

/** Reverses encipherPinBlock and decodes the PIN, with the same malformed-block checks as decodePinBlock. */
export function decipherPinBlock(input: DecipherPinBlockInput): string {
  assertFormat(input.format);
  const block = toBlock(input.block, input.format);
  if (input.format === 4) {
    const panField = iso4PanField(requirePan(input.pan, 4));
    const intermediate = xorBytes(aesEcb(input.key, block, true), panField);
    return decodePinBlock({ format: 4, block: aesEcb(input.key, intermediate, true) });
  }
  assertKeyLength(input.key, { allowed: [16, 24], name: "PIN encryption key" });
  return decodePinBlock({ format: input.format, block: tdesDecrypt(input.key, block), pan: input.pan });
}
