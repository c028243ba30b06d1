// ANSI X9.143 / TR-31 key blocks, versions B (TDES key block protection key, key derivation binding method)
// and D (AES KBPK): parse the header, derive the block's encryption and authentication keys (KBEK, KBAK),
// decrypt the key and check the MAC; wrap does the reverse.
// Invariants:
// - The KBPK itself is only ever asked for one thing, a CMAC (SP 800-38B) of 8 bytes of derivation data
//   (`KeyBlockProtectionKey.cmac`): a provider that keeps the KBPK in an HSM passes CKM_DES3_CMAC /
//   CKM_AES_CMAC in the token, and nothing here needs its bytes.
// - A key comes out only after the block's MAC verified (constant-time); a block that fails is refused whole.
// - Errors are CryptoInputErrors naming the field and the rule; they may quote the header (key usage,
//   algorithm, mode of use: public attributes), never key bytes, the encrypted key or the MAC.
// Sources: ANSI X9.143-2022 / ASC X9 TR-31:2018 §5 (header), A.7 (worked examples); derivation data as in
// TR-31:2018 §5.3.2.1 (version B) and §5.3.2.3 (version D); cross-checked with openemv/tr31 and psec.
import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from "node:crypto";
import { tripleLengthKey } from "./des.js";
import { CryptoInputError } from "./errors.js";
import { aesCmac, tdesCmac } from "./kcv.js";

export type KeyBlockVersion = "B" | "D";

/** What a key block needs of its protection key: its kind and size, and CMACs computed under it. */
export interface KeyBlockProtectionKey {
  algorithm: "tdes" | "aes";
  /** Bytes: TDES 16 or 24, AES 16, 24 or 32. */
  length: number;
  /** CMAC (NIST SP 800-38B) of `data` under the KBPK: 8 bytes for TDES, 16 for AES. */
  cmac(data: Buffer): Buffer;
}

export interface KeyBlockOptionalBlock {
  id: string;
  data: string;
}

export interface KeyBlockHeader {
  version: KeyBlockVersion;
  /** Characters in the whole block, as its header states. */
  length: number;
  /** Two characters: C0 card verification key, V2 Visa PVK, P0 PIN encryption key, K0 KEK, K1 KBPK… */
  keyUsage: string;
  /** T (TDES), A (AES), D (DES), H (HMAC), R (RSA)… */
  algorithm: string;
  /** B both, C generate and verify, D decrypt, E encrypt, G generate, N no special restrictions, V verify… */
  modeOfUse: string;
  keyVersionNumber: string;
  exportability: string;
  optionalBlocks: KeyBlockOptionalBlock[];
  /** The header's text (fixed part and optional blocks): what the MAC covers before the key data. */
  text: string;
}

const FIXED_HEADER = 16;

const spec = {
  B: { kbpk: "tdes", block: 8, mac: 8 },
  D: { kbpk: "aes", block: 16, mac: 16 },
} as const;

/** Reads the header of a key block (versions B and D) and checks the block's overall shape. */
export function parseKeyBlockHeader(block: string): KeyBlockHeader {
  if (typeof block !== "string" || !/^[\x20-\x7E]+$/.test(block)) {
    throw new CryptoInputError("key block must be printable ASCII");
  }
  if (block.length < FIXED_HEADER)
    throw new CryptoInputError("key block is shorter than its 16-character header");
  const version = block[0]!;
  if (version !== "B" && version !== "D") {
    throw new CryptoInputError(
      `key block version ID is ${safe(version)}: only B (TDES KBPK) and D (AES KBPK) are accepted (A and C, the variant methods, are deprecated)`,
    );
  }
  const lengthText = block.slice(1, 5);
  if (!/^[0-9]{4}$/.test(lengthText)) throw new CryptoInputError("key block length must be 4 digits");
  const length = Number(lengthText);
  if (length !== block.length) {
    throw new CryptoInputError(
      `key block length field says ${length} characters, the block has ${block.length}`,
    );
  }
  const count = block.slice(12, 14);
  if (!/^[0-9]{2}$/.test(count))
    throw new CryptoInputError("key block number of optional blocks must be 2 digits");
  const optionalBlocks: KeyBlockOptionalBlock[] = [];
  let at = FIXED_HEADER;
  for (let i = 0; i < Number(count); i++) {
    const id = block.slice(at, at + 2);
    let size = parseHexLength(block.slice(at + 2, at + 4), "optional block length");
    let dataAt = at + 4;
    if (size === 0) {
      // Extended length: 2 hex digits give the length of the length, which follows (TR-31:2018 §5.3.5).
      const lengthOfLength = parseHexLength(block.slice(at + 4, at + 6), "optional block length of length");
      size = parseHexLength(block.slice(at + 6, at + 6 + lengthOfLength), "optional block extended length");
      dataAt = at + 6 + lengthOfLength;
    }
    if (size < dataAt - at || at + size > block.length) {
      throw new CryptoInputError(`optional block ${i + 1} does not fit in the key block`);
    }
    optionalBlocks.push({ id, data: block.slice(dataAt, at + size) });
    at += size;
  }
  const { block: blockSize } = spec[version];
  if (at % blockSize !== 0) {
    throw new CryptoInputError(
      `key block header of version ${version} must be a multiple of ${blockSize} characters`,
    );
  }
  return {
    version,
    length,
    keyUsage: block.slice(5, 7),
    algorithm: block[7]!,
    modeOfUse: block[8]!,
    keyVersionNumber: block.slice(9, 11),
    exportability: block[11]!,
    optionalBlocks,
    text: block.slice(0, at),
  };
}

/**
 * Unwraps a version B or D key block under `kbpk`: the header, and the key once the MAC verified. A KBPK of the
 * wrong kind for the version, a malformed block, or a MAC that does not verify is a CryptoInputError.
 */
export function unwrapKeyBlock(
  block: string,
  kbpk: KeyBlockProtectionKey,
): { header: KeyBlockHeader; key: Buffer } {
  const header = parseKeyBlockHeader(block);
  const { block: blockSize, mac: macSize } = spec[header.version];
  assertKbpkFits(header.version, kbpk);
  const body = block.slice(header.text.length);
  if (!/^[0-9A-Fa-f]*$/.test(body))
    throw new CryptoInputError("key block encrypted key data and MAC must be hex");
  const encrypted = Buffer.from(body.slice(0, body.length - macSize * 2), "hex");
  const mac = Buffer.from(body.slice(body.length - macSize * 2), "hex");
  if (body.length % 2 !== 0 || encrypted.length === 0 || encrypted.length % blockSize !== 0) {
    throw new CryptoInputError(
      `key block encrypted key data must be whole ${blockSize}-byte blocks followed by a ${macSize}-byte MAC`,
    );
  }
  const { kbek, kbak } = deriveKeys(header.version, kbpk);
  try {
    const payload = cbc("decrypt", header.version, kbek, mac, encrypted);
    const expected = blockCmac(
      header.version,
      kbak,
      Buffer.concat([Buffer.from(header.text, "ascii"), payload]),
    );
    if (!timingSafeEqual(expected, mac)) {
      throw new CryptoInputError("key block MAC does not verify: a wrong KBPK, or the block was altered");
    }
    const bits = payload.readUInt16BE(0);
    if (bits === 0 || bits % 8 !== 0 || bits / 8 > payload.length - 2) {
      throw new CryptoInputError("key block key length field does not fit its payload");
    }
    const key = Buffer.from(payload.subarray(2, 2 + bits / 8));
    payload.fill(0);
    return { header, key };
  } finally {
    kbek.fill(0);
    kbak.fill(0);
  }
}

/**
 * Wraps `key` under `kbpk` with the given header (its length field is filled in). `pad` is the random padding
 * after the key (to a whole number of cipher blocks, at least the minimum); tests pass the published one.
 */
export function wrapKeyBlock(
  headerText: string,
  key: Buffer,
  kbpk: KeyBlockProtectionKey,
  pad?: Buffer,
): string {
  const version = headerText[0];
  if (version !== "B" && version !== "D") throw new CryptoInputError("key block version ID must be B or D");
  assertKbpkFits(version, kbpk);
  const { block: blockSize, mac: macSize } = spec[version];
  const padding = pad ?? randomBytes((blockSize - ((2 + key.length) % blockSize)) % blockSize);
  const payload = Buffer.concat([
    Buffer.from([(key.length * 8) >> 8, (key.length * 8) & 0xff]),
    key,
    padding,
  ]);
  if (payload.length % blockSize !== 0)
    throw new CryptoInputError(`key block padding must end on a ${blockSize}-byte boundary`);
  const total = headerText.length + payload.length * 2 + macSize * 2;
  const text = `${version}${String(total).padStart(4, "0")}${headerText.slice(5)}`;
  parseKeyBlockHeader(text + "0".repeat(total - text.length)); // the header is well formed
  const { kbek, kbak } = deriveKeys(version, kbpk);
  try {
    const mac = blockCmac(version, kbak, Buffer.concat([Buffer.from(text, "ascii"), payload]));
    const encrypted = cbc("encrypt", version, kbek, mac, payload);
    return `${text}${Buffer.concat([encrypted, mac]).toString("hex").toUpperCase()}`;
  } finally {
    kbek.fill(0);
    kbak.fill(0);
    payload.fill(0);
  }
}

function assertKbpkFits(version: KeyBlockVersion, kbpk: KeyBlockProtectionKey): void {
  const wanted = spec[version].kbpk;
  if (kbpk.algorithm !== wanted) {
    throw new CryptoInputError(
      `a version ${version} key block needs a ${wanted === "tdes" ? "TDES" : "AES"} key block protection key`,
    );
  }
  const lengths = wanted === "tdes" ? [16, 24] : [16, 24, 32];
  if (!lengths.includes(kbpk.length))
    throw new CryptoInputError(`the KBPK must be ${lengths.join(", ")} bytes`);
}

/**
 * KBEK and KBAK, each the concatenated CMACs under the KBPK of 8 bytes of derivation data: counter, key usage
 * (0000 encryption, 0001 MAC), separator 00, algorithm (0000 2-key TDES, 0001 3-key TDES, 0002/0003/0004
 * AES-128/192/256) and the derived key's length in bits; as many blocks as the KBPK is long.
 */
function deriveKeys(version: KeyBlockVersion, kbpk: KeyBlockProtectionKey): { kbek: Buffer; kbak: Buffer } {
  const algorithmCode =
    version === "B"
      ? kbpk.length === 16
        ? 0
        : 1
      : ({ 16: 2, 24: 3, 32: 4 } as Record<number, number>)[kbpk.length]!;
  const outputSize = spec[version].block;
  const derive = (usage: number) => {
    const parts: Buffer[] = [];
    for (let counter = 1; counter * outputSize < kbpk.length + outputSize; counter++) {
      const data = Buffer.from([
        counter,
        0,
        usage,
        0,
        0,
        algorithmCode,
        (kbpk.length * 8) >> 8,
        (kbpk.length * 8) & 0xff,
      ]);
      parts.push(kbpk.cmac(data));
    }
    return Buffer.concat(parts).subarray(0, kbpk.length);
  };
  return { kbek: Buffer.from(derive(0)), kbak: Buffer.from(derive(1)) };
}

function cbc(
  direction: "encrypt" | "decrypt",
  version: KeyBlockVersion,
  key: Buffer,
  iv: Buffer,
  data: Buffer,
): Buffer {
  const [algorithm, cipherKey] =
    version === "B" ? ["des-ede3-cbc", tripleLengthKey(key)] : [`aes-${key.length * 8}-cbc`, key];
  const make = direction === "encrypt" ? createCipheriv : createDecipheriv;
  const cipher = make(algorithm, cipherKey, iv).setAutoPadding(false);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/** The block's MAC under the KBAK: the full CMAC (8 bytes for B, 16 for D). */
function blockCmac(version: KeyBlockVersion, kbak: Buffer, data: Buffer): Buffer {
  return version === "B" ? tdesCmac(kbak, data) : aesCmac(kbak, data);
}

function parseHexLength(text: string, name: string): number {
  if (!/^[0-9A-Fa-f]+$/.test(text)) throw new CryptoInputError(`key block ${name} must be hex`);
  return Number.parseInt(text, 16);
}

/** A header character quoted in an error: printable, never key data (the header is public). */
function safe(char: string): string {
  return JSON.stringify(char);
}
