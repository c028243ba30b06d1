// What a key brought in by ceremony must be, for every provider: which types may come in, of which algorithm and
// length, which TR-31 header (key usage, algorithm, mode of use) each type takes, and the check value test.
// Pure rules over the key's attributes and bytes: the local provider applies them to the bytes it holds, a
// PKCS#11 provider to the object it creates (it computes the check value in the token). Invariant: every
// refusal is a validation_failed AppError that names the field and the rule, never a byte of a key.
import { adjustDesParity } from "../crypto/des.js";
import type { KeyBlockHeader } from "../crypto/tr31.js";
import { AppError } from "../domain/errors.js";
import { type ImportableKeyType, importableKeyTypes, type KeyImport, type KeyType } from "./key-provider.js";

export type KeyFamily = "tdes" | "aes";

/** The algorithm name a key is listed with: tdes-2key, tdes-3key, aes-128, aes-192, aes-256. */
export function algorithmName(family: KeyFamily, length: number): string {
  return family === "tdes" ? (length === 16 ? "tdes-2key" : "tdes-3key") : `aes-${length * 8}`;
}

/** A listed algorithm name's family (every symmetric key a PIN block or CVV uses is TDES or AES). */
export function familyOf(algorithm: string): KeyFamily {
  return algorithm.startsWith("tdes") ? "tdes" : "aes";
}

/** Family and byte lengths each importable type takes. CVK and PVK are double-length TDES (Visa). */
const shapes: Record<ImportableKeyType, { tdes?: number[]; aes?: number[] }> = {
  cvk: { tdes: [16] },
  pvk: { tdes: [16] },
  "pek-tdes": { tdes: [16, 24] },
  "pek-aes": { aes: [16, 24, 32] },
  zpk: { tdes: [16, 24], aes: [16, 24, 32] },
  kbpk: { tdes: [16, 24], aes: [16, 24, 32] },
};

const invalid = (field: string, message: string) =>
  new AppError("validation_failed", message, { fields: { [field]: [message] } });

export function isImportable(type: KeyType): type is ImportableKeyType {
  return (importableKeyTypes as readonly string[]).includes(type);
}

/** The family a key of `length` bytes of `type` has: `requested`, the type's only one, or TDES for 16/24 bytes. */
export function importedFamily(type: KeyType, length: number, requested?: KeyFamily): KeyFamily {
  if (!isImportable(type)) {
    throw invalid(
      "type",
      `A ${type} key cannot be imported (it is generated inside the provider); importable: ${importableKeyTypes.join(", ")}.`,
    );
  }
  const shape = shapes[type];
  const families = (Object.keys(shape) as KeyFamily[]).filter(
    (f) => requested === undefined || f === requested,
  );
  if (families.length === 0)
    throw invalid("algorithm", `A ${type} key is ${Object.keys(shape).join(" or ")}, not ${requested}.`);
  // 16 or 24 bytes could be either: TDES unless asked (the keys partners and KBPKs of this size usually are).
  const family = families.length === 1 ? families[0]! : length === 32 ? "aes" : "tdes";
  const lengths = shape[family]!;
  if (!lengths.includes(length)) {
    throw invalid(
      "material",
      `A ${family === "tdes" ? "TDES" : "AES"} ${type} key is ${lengths.map((n) => `${n} bytes (${n * 2} hex digits)`).join(" or ")}.`,
    );
  }
  return family;
}

/**
 * The key as it will be stored: checked against its type, TDES keys given odd parity (DES ignores the parity
 * bits, so the check value is unchanged; HSMs expect it). The caller wipes what it passed in.
 */
export function importedKey(request: KeyImport): { family: KeyFamily; algorithm: string; material: Buffer } {
  const family = importedFamily(request.type, request.material.length, request.algorithm);
  if (family === "aes") {
    return {
      family,
      algorithm: algorithmName(family, request.material.length),
      material: Buffer.from(request.material),
    };
  }
  const material = adjustDesParity(request.material);
  return { family, algorithm: algorithmName(family, material.length), material };
}

/** The `kcv` a request gives, checked for shape: 4 or 6 hex digits, upper-cased. */
export function expectedKcv(kcv: string | undefined): string | undefined {
  if (kcv === undefined) return undefined;
  if (!/^([0-9A-Fa-f]{4}|[0-9A-Fa-f]{6})$/.test(kcv)) throw invalid("kcv", "kcv must be 4 or 6 hex digits.");
  return kcv.toUpperCase();
}

/** Refuses a key whose check value (6 hex digits) does not start with the expected one. */
export function assertKcv(actual: string, expected: string | undefined): void {
  if (expected !== undefined && !actual.toUpperCase().startsWith(expected)) {
    throw invalid(
      "kcv",
      `The key's check value is ${actual}, not ${expected}: a component was mistyped, or the check value belongs to another key. Nothing was stored.`,
    );
  }
}

/** TR-31 header values each type takes (TR-31:2018 / X9.143 Table 6 key usage, Table 7 algorithm, Table 8 mode). */
const blockHeaders: Record<
  ImportableKeyType,
  { keyUsage: string[]; algorithm: string[]; modeOfUse: string[] }
> = {
  // The service both generates (GET cvv) and verifies CVVs: C (generate and verify) or N (no restriction).
  cvk: { keyUsage: ["C0"], algorithm: ["T"], modeOfUse: ["C", "N"] },
  // V2: PIN verification key, Visa PVV; sealing a PIN generates a PVV, a PIN check verifies one.
  pvk: { keyUsage: ["V2"], algorithm: ["T"], modeOfUse: ["C", "N"] },
  // PIN blocks presented are deciphered here: D (decrypt only), B (both) or N; E (encrypt only) is the sender's.
  "pek-tdes": { keyUsage: ["P0"], algorithm: ["T"], modeOfUse: ["B", "D", "N"] },
  "pek-aes": { keyUsage: ["P0"], algorithm: ["A"], modeOfUse: ["B", "D", "N"] },
  zpk: { keyUsage: ["P0"], algorithm: ["T", "A"], modeOfUse: ["B", "D", "N"] },
  // K0: key encryption or wrapping key; K1: TR-31 key block protection key. Blocks are unwrapped under it.
  kbpk: { keyUsage: ["K0", "K1"], algorithm: ["T", "A"], modeOfUse: ["B", "D", "N"] },
};

const usageNames: Record<string, string> = {
  C0: "card verification key",
  V2: "Visa PIN verification key",
  P0: "PIN encryption key",
  K0: "key encryption key",
  K1: "TR-31 key block protection key",
};

/** Refuses a key block whose header does not fit the target type, naming the field; returns the key's family. */
export function checkKeyBlockHeader(type: KeyType, header: KeyBlockHeader): KeyFamily {
  if (!isImportable(type)) importedFamily(type, 0);
  const wanted = blockHeaders[type as ImportableKeyType];
  const check = (field: string, name: string, value: string, allowed: string[]) => {
    if (!allowed.includes(value)) {
      const known = usageNames[value] ? ` (${usageNames[value]})` : "";
      throw invalid(
        "block",
        `The key block's ${name} is ${value}${known}; a ${type} key needs ${allowed.map((a) => `${a}${field === "keyUsage" && usageNames[a] ? ` (${usageNames[a]})` : ""}`).join(" or ")}.`,
      );
    }
  };
  check("keyUsage", "key usage", header.keyUsage, wanted.keyUsage);
  check("algorithm", "algorithm", header.algorithm, wanted.algorithm);
  check("modeOfUse", "mode of use", header.modeOfUse, wanted.modeOfUse);
  return header.algorithm === "T" ? "tdes" : "aes";
}
