// ISO 9564-1 PIN blocks: formats 0–3 (8-byte, enciphered with 3DES) and format 4 (16-byte, AES).
// Invariants: random fill (formats 1, 3, 4) comes from node:crypto randomBytes unless a test injects a
// source; decoding checks control field, PIN length, PIN digits and fill rules and throws
// CryptoInputError on any deviation, so a malformed block never decodes to a (wrong) PIN.

import { randomBytes } from "node:crypto";
import { type BlockCipher, createAesCipher } from "./block-cipher.js";
import { createTdesCipher } from "./des.js";
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

/** Nibble `k` (0–15) of the format 0/3 PAN field: 0000, then the 12 rightmost PAN digits excluding the check digit. */
function iso0PanNibble(pan: string, k: number): number {
  const i = pan.length - 17 + k;
  return k < 4 || i < 0 ? 0 : pan.charCodeAt(i) - 48;
}

/** Nibble `k` (0–31) of the format 4 PAN field: M = PAN length − 12 (0 when shorter), the PAN left-padded to 12 digits, zeros. */
function iso4PanNibble(pan: string, k: number): number {
  if (k === 0) return Math.max(0, pan.length - 12);
  const i = k - 1 - Math.max(0, 12 - pan.length);
  return i < 0 || i >= pan.length ? 0 : pan.charCodeAt(i) - 48;
}

/** XORs a PAN field (given nibble by nibble, PAN already validated) into `block` in place. */
function xorPanField(block: Buffer, pan: string, nibble: (pan: string, k: number) => number): Buffer {
  for (let j = 0; j < block.length; j++) {
    block[j] = (block[j] as number) ^ ((nibble(pan, 2 * j) << 4) | nibble(pan, 2 * j + 1));
  }
  return block;
}

/** Formats 0 and 3: 0000 + the 12 rightmost PAN digits excluding the check digit (zero-padded left). */
export function iso0PanField(pan: string): Buffer {
  assertDigits(pan, "PAN", 12, 19);
  return xorPanField(Buffer.alloc(8), pan, iso0PanNibble);
}

/**
 * Format 4: one nibble M = PAN length − 12 (0 when shorter), the PAN left-padded with zeros to 12
 * digits, then zero nibbles up to 16 bytes.
 */
export function iso4PanField(pan: string): Buffer {
  assertDigits(pan, "PAN", 1, 19);
  return xorPanField(Buffer.alloc(16), pan, iso4PanNibble);
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

/** The block as bytes of the format's size; a Buffer is read, never written (callers copy before XOR). */
function toBlock(block: Buffer | string, format: PinBlockFormat): Uint8Array {
  const size = format === 4 ? 16 : 8;
  let bytes: Uint8Array;
  if (typeof block === "string") bytes = parseHex(block, { name: "PIN block" });
  else if (block instanceof Uint8Array) bytes = block;
  else throw new CryptoInputError("PIN block must be bytes or a hex string");
  if (bytes.length !== size) {
    throw new CryptoInputError(`format ${format} PIN block must be ${size} bytes (${size * 2} hex digits)`);
  }
  return bytes;
}

function fillAllowed(format: PinBlockFormat, nibble: number): boolean {
  switch (format) {
    case 0:
    case 2:
      return nibble === 0xf;
    case 1:
      return true;
    case 3:
      return nibble >= 0xa;
    case 4:
      return nibble === 0xa;
  }
}

const DIGIT_CHARS = "0123456789";

/**
 * Reads the PIN out of clear PIN-field bytes (formats 0 and 3 already XORed with the PAN field); only the first
 * 8 bytes carry the PIN (format 4's second half is random and unchecked). Checks, in order: control field,
 * PIN length, PIN digits, fill.
 */
function readPin(clear: Uint8Array, format: PinBlockFormat): string {
  const head = clear[0] as number;
  if (head >> 4 !== format) {
    throw new CryptoInputError(`PIN block control field does not match format ${format}`);
  }
  const length = head & 0xf;
  if (length < 4 || length > 12) throw new CryptoInputError("PIN block has an invalid PIN length");
  let pin = "";
  for (let k = 2; k < 16; k++) {
    const b = clear[k >> 1] as number;
    const nibble = (k & 1) === 0 ? b >> 4 : b & 0xf;
    if (k < 2 + length) {
      if (nibble > 9) throw new CryptoInputError("PIN block has non-decimal PIN digits");
      pin += DIGIT_CHARS[nibble];
    } else if (!fillAllowed(format, nibble)) {
      throw new CryptoInputError(`PIN block fill breaks the format ${format} rules`);
    }
  }
  return pin;
}

/** Reads the PIN out of a clear block; throws CryptoInputError if any field breaks the format's rules. */
export function decodePinBlock(input: DecodePinBlockInput): string {
  const { format } = input;
  assertFormat(format);
  const block = toBlock(input.block, format);
  if (format === 0 || format === 3) {
    return readPin(xorPanField(Buffer.from(block), requirePan(input.pan, format), iso0PanNibble), format);
  }
  return readPin(block, format);
}

export interface EncipherPinBlockInput extends EncodePinBlockInput {
  /** Formats 0–3: 3DES key (16 or 24 bytes). Format 4: AES key (16, 24 or 32 bytes). */
  key: Buffer;
}

export interface DecipherPinBlockInput extends DecodePinBlockInput {
  key: Buffer;
}

/** The cipher family of a PIN key: 3DES for formats 0–3, AES for format 4. */
export type PinKeyAlgorithm = "tdes" | "aes";

/**
 * A PIN block cipher bound to one key (formats 0–3 for a "tdes" key, format 4 for an "aes" key). The OpenSSL
 * key schedules are built once per direction and reused by every call; the object holds its own copy of the
 * key, so it keeps key material exactly as long as the caller keeps the object (nothing is cached globally).
 */
export interface PinBlockCipher {
  readonly algorithm: PinKeyAlgorithm;
  /** Same result as encipherPinBlock under this key. */
  encipher(input: EncodePinBlockInput): Buffer;
  /** Same result and checks as decipherPinBlock under this key. */
  decipher(input: DecodePinBlockInput): string;
}

function assertFormatFor(format: number, algorithm: PinKeyAlgorithm): asserts format is PinBlockFormat {
  assertFormat(format);
  if ((format === 4) !== (algorithm === "aes")) {
    throw new CryptoInputError(
      format === 4 ? "PIN block format 4 needs an AES key" : `PIN block format ${format} needs a 3DES key`,
    );
  }
}

/**
 * Formats 0–3: 3DES-ECB of the clear block. Format 4 (ISO 9564-4 / X9.24-3):
 * AES(K, AES(K, PIN field) XOR PAN field) — the PAN is bound inside the encipherment.
 * Throws CryptoInputError for a key of the wrong length (3DES 16/24 bytes, AES 16/24/32).
 */
export function createPinBlockCipher(key: Buffer, algorithm: PinKeyAlgorithm): PinBlockCipher {
  if (algorithm === "aes") return pinBlockCipherOver(createAesCipher(key, "AES PIN key"), algorithm);
  if (algorithm !== "tdes") throw new CryptoInputError('PIN key algorithm must be "tdes" or "aes"');
  assertKeyLength(key, { allowed: [16, 24], name: "PIN encryption key" });
  return pinBlockCipherOver(createTdesCipher(key), algorithm);
}

/**
 * The PIN block formats over a key's ECB cipher (AES for format 4, 3DES for 0–3): node:crypto's, or a PKCS#11
 * token's C_Encrypt / C_Decrypt on its own key object. Same results and checks as createPinBlockCipher.
 */
export function pinBlockCipherOver(cipher: BlockCipher, algorithm: PinKeyAlgorithm): PinBlockCipher {
  if (algorithm === "aes") {
    const aes = cipher;
    return {
      algorithm,
      encipher(input) {
        assertFormatFor(input.format, algorithm);
        const pan = requirePan(input.pan, 4);
        return aes.encrypt(xorPanField(aes.encrypt(encodePinBlock(input)), pan, iso4PanNibble));
      },
      decipher(input) {
        assertFormatFor(input.format, algorithm);
        const block = toBlock(input.block, 4);
        const pan = requirePan(input.pan, 4);
        return readPin(aes.decrypt(xorPanField(aes.decrypt(block), pan, iso4PanNibble)), 4);
      },
    };
  }
  if (algorithm !== "tdes") throw new CryptoInputError('PIN key algorithm must be "tdes" or "aes"');
  const tdes = cipher;
  return {
    algorithm,
    encipher(input) {
      assertFormatFor(input.format, algorithm);
      return tdes.encrypt(encodePinBlock(input));
    },
    decipher(input) {
      const { format } = input;
      assertFormatFor(format, algorithm);
      const clear = tdes.decrypt(toBlock(input.block, format));
      if (format === 0 || format === 3) xorPanField(clear, requirePan(input.pan, format), iso0PanNibble);
      return readPin(clear, format);
    },
  };
}

const algorithmFor = (format: PinBlockFormat): PinKeyAlgorithm => (format === 4 ? "aes" : "tdes");

/** One-off encipherment; prefer createPinBlockCipher when enciphering many blocks under the same key. */
export function encipherPinBlock(input: EncipherPinBlockInput): Buffer {
  assertFormat(input.format);
  return createPinBlockCipher(input.key, algorithmFor(input.format)).encipher(input);
}

/**
 * Reverses encipherPinBlock and decodes the PIN, with the same malformed-block checks as decodePinBlock.
 * One-off; prefer createPinBlockCipher when deciphering many blocks under the same key (the verify path).
 */
export function decipherPinBlock(input: DecipherPinBlockInput): string {
  assertFormat(input.format);
  return createPinBlockCipher(input.key, algorithmFor(input.format)).decipher(input);
}
