// Hex parsing for keys and data blocks, shared by every algorithm in src/crypto.
// Invariant: a key or block only becomes a Buffer after its length and alphabet were checked, and a
// rejection says which field was wrong and why, never what it contained.

import { CryptoInputError } from "./errors.js";

/** Allowed key lengths in bytes: double-length 3DES, double/triple-length 3DES, or any 3DES/AES size. */
export type KeyLengths = readonly [16] | readonly [16, 24] | readonly [16, 24, 32];

export interface ParseKeyOptions {
  allowed: KeyLengths;
  /** Field name used in error messages, e.g. "CVK". */
  name: string;
}

const HEX_RE = /^[0-9A-Fa-f]*$/;

export function isHex(text: string): boolean {
  return HEX_RE.test(text);
}

/** Parses an even-length hex string into bytes; `bytes` pins the exact length when given. */
export function parseHex(hex: string, options: { name: string; bytes?: number }): Buffer {
  const { name } = options;
  if (typeof hex !== "string" || hex.length === 0) {
    throw new CryptoInputError(`${name} must be a non-empty hex string`);
  }
  if (!HEX_RE.test(hex)) throw new CryptoInputError(`${name} must contain only hex digits 0-9 and A-F`);
  if (hex.length % 2 !== 0) throw new CryptoInputError(`${name} must have an even number of hex digits`);
  if (options.bytes !== undefined && hex.length !== options.bytes * 2) {
    throw new CryptoInputError(`${name} must be ${options.bytes} bytes (${options.bytes * 2} hex digits)`);
  }
  return Buffer.from(hex, "hex");
}

/** Parses a clear key given in hex and checks that its length is one of `allowed`. */
export function parseKey(hex: string, options: ParseKeyOptions): Buffer {
  const key = parseHex(hex, { name: options.name });
  assertKeyLength(key, options);
  return key;
}

/** Same length rule as parseKey, for keys that already arrive as bytes. */
export function assertKeyLength(key: Buffer, options: ParseKeyOptions): void {
  if (!Buffer.isBuffer(key)) throw new CryptoInputError(`${options.name} must be a Buffer`);
  if (!(options.allowed as readonly number[]).includes(key.length)) {
    const allowed = options.allowed.map((n) => `${n} bytes (${n * 2} hex digits)`).join(" or ");
    throw new CryptoInputError(`${options.name} must be ${allowed}`);
  }
}

/** Upper-case hex, the form every vector and HSM log uses. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex").toUpperCase();
}

export function xorBytes(a: Uint8Array, b: Uint8Array): Buffer {
  if (a.length !== b.length) throw new CryptoInputError("XOR operands must have the same length");
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** Checks that `value` is `min`–`max` decimal digits (PANs, PINs, expiry dates, service codes). */
export function assertDigits(value: string, name: string, min: number, max = min): void {
  if (typeof value !== "string" || value.length < min || value.length > max || !/^[0-9]+$/.test(value)) {
    const size = min === max ? `${min}` : `${min}-${max}`;
    throw new CryptoInputError(`${name} must be ${size} decimal digits`);
  }
}
