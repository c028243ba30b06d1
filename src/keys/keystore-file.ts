// The local keystore file: every key, versioned, each sealed with AES-256-GCM under the master key (AAD = the
// key id, so sealed keys cannot be swapped between entries). The file never holds a clear key; a check value
// of the master key lets start-up say "wrong master key" instead of failing on the first card.
// Generated keys are versioned per type and the newest generated one is active; an imported key (components or
// TR-31, `origin` in its entry) takes the next version number but never becomes active: it is used by id.
// Every change (create, add missing types, rotate, import, retire) re-reads the file under a lock held across processes
// (keystore.json.lock) and replaces it whole, 0600: processes starting together on a fresh data directory end up
// with one keystore, and a reader never sees half of one.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
} from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { keyCheckValue } from "../crypto/kcv.js";
import type { Clock } from "../lib/clock.js";
import { LockTimeoutError, withFileLock } from "../lib/file-lock.js";
import { replaceFile } from "../lib/private-files.js";
import { generatedKeyTypes, type KeyInfo, type KeyType } from "./key-provider.js";

const FORMAT = "cardvault-keystore/1";

interface SealedKey {
  id: string;
  type: KeyType;
  version: number;
  algorithm: string;
  kcv: string;
  createdAt: string;
  /** Asymmetric keys: the instant after which the published public half must not be used. */
  notAfter?: string;
  /** Set once no stored ciphertext names this key any more (after re-encryption); it never seals again. */
  retiredAt?: string;
  /** Imported keys only (absent: generated here). */
  origin?: "components" | "tr31";
  sealed: string;
}

interface KeystoreFile {
  format: string;
  masterKeyCheck: string;
  keys: SealedKey[];
}

export interface ClearKey extends KeyInfo {
  material: Buffer;
}

/**
 * Symmetric keys are `bytes` random bytes; RSA keys (`rsaBits`) and Ed25519 keys (`ed25519`) are PKCS#8 DER
 * private keys.
 */
const algorithms: Record<
  (typeof generatedKeyTypes)[number],
  { algorithm: string; bytes: number; rsaBits?: number; ed25519?: true }
> = {
  cvk: { algorithm: "tdes-2key", bytes: 16 },
  pvk: { algorithm: "tdes-2key", bytes: 16 },
  "pek-tdes": { algorithm: "tdes-2key", bytes: 16 },
  "pek-aes": { algorithm: "aes-256", bytes: 32 },
  "pin-storage": { algorithm: "aes-256", bytes: 32 },
  "pan-data": { algorithm: "aes-256", bytes: 32 },
  fingerprint: { algorithm: "hmac-sha256", bytes: 32 },
  "webhook-secret": { algorithm: "aes-256", bytes: 32 },
  // Get Card Data: the device wraps its AES session key to this key (RSA-OAEP-SHA256, 4096 bits as Thredd).
  "secure-data-wrap": { algorithm: "rsa-4096-oaep-sha256", bytes: 0, rsaBits: 4096 },
  // ...and verifies our answers with this one (RSA-PSS SHA-256; 3072 bits = 128-bit strength, like SHA-256).
  "secure-data-sign": { algorithm: "rsa-3072-pss-sha256", bytes: 0, rsaBits: 3072 },
  // OAuth2 access tokens (POST /oauth2/token) are JWTs signed EdDSA with Ed25519 (RFC 8037): small, fast,
  // deterministic signatures; the public halves are served at /.well-known/jwks.json.
  "access-token-sign": { algorithm: "ed25519", bytes: 0, ed25519: true },
};

/** How long a published public key may be relied on; rotate (`keys rotate --type …`) before it runs out. */
const PUBLIC_KEY_VALIDITY_DAYS = 730;

/** Makes an RSA private key (PKCS#8 DER). Injectable so test suites can reuse one pair instead of ~1 s each. */
export type RsaKeyGenerator = (bits: number) => Buffer;

export interface KeystoreOptions {
  generateRsaKey?: RsaKeyGenerator;
}

const generateRsaKey: RsaKeyGenerator = (bits) =>
  generateKeyPairSync("rsa", {
    modulusLength: bits,
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "der" },
  }).privateKey;

/** An Ed25519 private key (PKCS#8 DER): cheap to make, so never injected. */
const generateEd25519Key = (): Buffer =>
  generateKeyPairSync("ed25519", {
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "der" },
  }).privateKey;

export class KeystoreError extends Error {}

export function keystoreExists(file: string): boolean {
  return existsSync(file);
}

/** Reads and opens every key. Throws KeystoreError with a clear message on a wrong master key or damage. */
export function loadKeystore(file: string, masterKey: Buffer): ClearKey[] {
  const store = readFile(file);
  if (store.masterKeyCheck !== masterKeyCheck(masterKey)) {
    throw new KeystoreError(
      `The master key does not open the keystore ${file} (its check value differs): set CARDVAULT_MASTER_KEY to the key the keystore was created with.`,
    );
  }
  const newest = activeVersions(store.keys);
  return store.keys.map((k) => ({
    id: k.id,
    type: k.type,
    version: k.version,
    algorithm: k.algorithm,
    kcv: k.kcv,
    createdAt: k.createdAt,
    ...(k.notAfter ? { notAfter: k.notAfter } : {}),
    ...(k.retiredAt ? { retiredAt: k.retiredAt } : {}),
    active: !k.origin && newest.get(k.type) === k.version && !k.retiredAt,
    origin: k.origin ?? "generated",
    retired: Boolean(k.retiredAt),
    material: unseal(k, masterKey),
  }));
}

/**
 * Creates the keystore, or adds version 1 of any key type it lacks. Returns the ids created (none when another
 * process created them first: the caller then loads theirs). The file is rewritten only when something changed.
 */
export function initKeystore(
  file: string,
  masterKey: Buffer,
  clock: Clock,
  options: KeystoreOptions = {},
): string[] {
  return changeKeystore(file, masterKey, { createIfAbsent: true }, (store) =>
    generatedKeyTypes
      .filter((type) => !store.keys.some((k) => k.type === type && !k.origin))
      .map((type) => {
        const key = newKey(type, 1, masterKey, clock, options);
        store.keys.push(key);
        return key.id;
      }),
  );
}

/** Adds a new version of each given type; new work uses it, existing ciphertexts keep naming their key. */
export function rotateKeys(
  file: string,
  masterKey: Buffer,
  types: readonly KeyType[],
  clock: Clock,
  options: KeystoreOptions = {},
): string[] {
  const generated: readonly KeyType[] = generatedKeyTypes;
  const imported = types.filter((type) => !generated.includes(type));
  if (imported.length > 0) {
    throw new KeystoreError(
      `${imported.join(", ")} keys are not generated here: bring a new one in with \`keys import\`.`,
    );
  }
  return changeKeystore(file, masterKey, {}, (store) => {
    return types.map((type) => {
      const key = newKey(type as GeneratedKeyType, nextVersion(store.keys, type), masterKey, clock, options);
      store.keys.push(key);
      return key.id;
    });
  });
}

/**
 * Marks key versions retired: the caller has re-encrypted every ciphertext they sealed. The active version of a
 * type cannot be retired. Retired keys still open old backups but are listed as retired. Returns the ids changed.
 */
export function retireKeys(file: string, masterKey: Buffer, ids: readonly string[], clock: Clock): string[] {
  return changeKeystore(file, masterKey, {}, (store) => {
    const newest = activeVersions(store.keys);
    const retired: string[] = [];
    for (const k of store.keys) {
      if (!ids.includes(k.id) || k.retiredAt) continue;
      if (!k.origin && newest.get(k.type) === k.version)
        throw new KeystoreError(`Key ${k.id} is the active ${k.type} key; rotate first.`);
      k.retiredAt = clock.now().toISOString();
      retired.push(k.id);
    }
    return retired;
  });
}

/** A key brought in by a ceremony, already checked (key-import.ts): its type, algorithm name and bytes. */
export interface ImportedKeyEntry {
  type: KeyType;
  algorithm: string;
  material: Buffer;
  origin: "components" | "tr31";
}

/**
 * Adds an imported key as the next version of its type (id `<type>-v<n>`), sealed like every other; it is
 * never active. Returns it as loadKeystore would, so the running provider can use it at once.
 */
export function addImportedKey(
  file: string,
  masterKey: Buffer,
  entry: ImportedKeyEntry,
  clock: Clock,
): ClearKey {
  let added: SealedKey | undefined;
  changeKeystore(file, masterKey, {}, (store) => {
    const version = nextVersion(store.keys, entry.type);
    const id = `${entry.type}-v${version}`;
    added = {
      id,
      type: entry.type,
      version,
      algorithm: entry.algorithm,
      kcv: checkValue(entry.algorithm, entry.material),
      createdAt: clock.now().toISOString(),
      origin: entry.origin,
      sealed: seal(entry.material, id, masterKey),
    };
    store.keys.push(added);
    return [id];
  });
  const k = added!;
  return {
    id: k.id,
    type: k.type,
    version: k.version,
    algorithm: k.algorithm,
    kcv: k.kcv,
    createdAt: k.createdAt,
    active: false,
    origin: entry.origin,
    retired: false,
    material: Buffer.from(entry.material),
  };
}

/**
 * Every change to the keystore: read-modify-write, one process at a time. Without the lock two processes that
 * each found a key type missing would each generate their own, the last rename would win, and the other would
 * serve with keys no file holds (cards it sealed would open nowhere else). The lock is the kernel's, so a holder
 * that dies frees it. `change` edits the store it is given and returns the ids it changed; the file is replaced
 * whole only when there are any.
 */
function changeKeystore(
  file: string,
  masterKey: Buffer,
  options: { createIfAbsent?: boolean },
  change: (store: KeystoreFile) => string[],
): string[] {
  try {
    return withFileLock(`${file}.lock`, () => {
      const store: KeystoreFile =
        options.createIfAbsent && !existsSync(file)
          ? { format: FORMAT, masterKeyCheck: masterKeyCheck(masterKey), keys: [] }
          : readFile(file);
      if (store.masterKeyCheck !== masterKeyCheck(masterKey)) {
        throw new KeystoreError(`The master key does not open the keystore ${file}.`);
      }
      const changed = change(store);
      if (changed.length > 0) writeFile(file, store);
      return changed;
    });
  } catch (error) {
    if (error instanceof LockTimeoutError) throw new KeystoreError(error.message);
    throw error;
  }
}

type GeneratedKeyType = (typeof generatedKeyTypes)[number];

function newKey(
  type: GeneratedKeyType,
  version: number,
  masterKey: Buffer,
  clock: Clock,
  options: KeystoreOptions,
): SealedKey {
  const { algorithm, bytes, rsaBits, ed25519 } = algorithms[type];
  const material = rsaBits
    ? (options.generateRsaKey ?? generateRsaKey)(rsaBits)
    : ed25519
      ? generateEd25519Key()
      : algorithm.startsWith("tdes")
        ? withOddParity(randomBytes(bytes))
        : randomBytes(bytes);
  const id = `${type}-v${version}`;
  const now = clock.now();
  return {
    id,
    type,
    version,
    algorithm,
    kcv: checkValue(algorithm, material),
    createdAt: now.toISOString(),
    ...(rsaBits || ed25519
      ? { notAfter: new Date(now.getTime() + PUBLIC_KEY_VALIDITY_DAYS * 86_400_000).toISOString() }
      : {}),
    sealed: seal(material, id, masterKey),
  };
}

function checkValue(algorithm: string, material: Buffer): string {
  if (algorithm.startsWith("tdes")) return keyCheckValue(material, "tdes", 3);
  if (algorithm.startsWith("aes")) return keyCheckValue(material, "aes", 3);
  // RSA and Ed25519: the start of the SHA-256 of the public key (SPKI DER), which anyone holding it can check.
  if (algorithm.startsWith("rsa") || algorithm === "ed25519") {
    const privateKey = createPrivateKey({ key: material, format: "der", type: "pkcs8" });
    const spki = createPublicKey(privateKey).export({ type: "spki", format: "der" });
    return createHash("sha256").update(spki).digest("hex").slice(0, 6).toUpperCase();
  }
  return createHmac("sha256", material).update(Buffer.alloc(16)).digest("hex").slice(0, 6).toUpperCase();
}

/** DES keys conventionally carry odd parity in each byte's low bit; HSMs reject keys without it. */
function withOddParity(key: Buffer): Buffer {
  for (let i = 0; i < key.length; i++) {
    const high = key[i]! & 0xfe;
    let ones = 0;
    for (let b = high; b; b >>= 1) ones += b & 1;
    key[i] = high | (ones % 2 === 0 ? 1 : 0);
  }
  return key;
}

function masterKeyCheck(masterKey: Buffer): string {
  return createHmac("sha256", masterKey)
    .update("cardvault keystore master key check")
    .digest("hex")
    .slice(0, 16);
}

function seal(material: Buffer, id: string, masterKey: Buffer): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", masterKey, nonce);
  cipher.setAAD(Buffer.from(id));
  const ct = Buffer.concat([cipher.update(material), cipher.final()]);
  return Buffer.concat([nonce, ct, cipher.getAuthTag()]).toString("base64");
}

function unseal(key: SealedKey, masterKey: Buffer): Buffer {
  const raw = Buffer.from(key.sealed, "base64");
  try {
    const decipher = createDecipheriv("aes-256-gcm", masterKey, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(key.id));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
  } catch {
    throw new KeystoreError(
      `Key ${key.id} in the keystore is damaged: it does not open under the master key.`,
    );
  }
}

/** The newest generated version of each type: the active one (unless retired). */
function activeVersions(keys: SealedKey[]): Map<KeyType, number> {
  const newest = new Map<KeyType, number>();
  for (const k of keys) if (!k.origin) newest.set(k.type, Math.max(newest.get(k.type) ?? 0, k.version));
  return newest;
}

/** Versions number every key of a type, generated or imported: ids stay unique. */
function nextVersion(keys: SealedKey[], type: KeyType): number {
  return Math.max(0, ...keys.filter((k) => k.type === type).map((k) => k.version)) + 1;
}

function readFile(file: string): KeystoreFile {
  let parsed: KeystoreFile;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8")) as KeystoreFile;
  } catch (error) {
    throw new KeystoreError(`Cannot read the keystore ${file}: ${(error as Error).message}`);
  }
  if (parsed.format !== FORMAT) throw new KeystoreError(`${file} is not a cardvault keystore (${FORMAT}).`);
  return parsed;
}

/** Write-then-rename (0600, in a directory created 0700), so neither a crash nor a reader sees half a keystore. */
function writeFile(file: string, store: KeystoreFile): void {
  replaceFile(file, `${JSON.stringify(store, null, 2)}\n`);
}
