// A PKCS#11 token as the PKCS#11 key provider uses it (pkcs11js over the vendor's module; SoftHSM2 in tests):
// the module loaded once per process, the token found by label, one login, a session for the short synchronous
// operations and a pool of sessions for the slow ones (RSA), and the key objects with their metadata.
// Invariants:
// - Every key object is created CKA_SENSITIVE=true, CKA_EXTRACTABLE=false, CKA_TOKEN=true, CKA_PRIVATE=true; a
//   generated one never exists outside the token (C_GenerateKey / C_GenerateKeyPair), an imported one is
//   created from clear material with C_CreateObject and the caller's copy wiped (importSecretKey).
// - Key check values are computed inside the token when a key is created, and kept with its metadata; a
//   ceremony's check (KcvCheck) runs before the metadata is written, and a refusal destroys the object.
// - The newest *generated* version of a type is active; an imported key (components, TR-31) never is.
// - Metadata (id, type, version, algorithm, kcv, createdAt, notAfter, origin, retiredAt) lives in the token, in a
//   CKO_DATA object per key (CKA_APPLICATION "cardvault-key", CKA_LABEL = key id, CKA_VALUE = JSON): a restart,
//   or another process on the same token, sees the same key set. The database holds none of it.
// - Nothing here logs or throws key material: errors name the key id and the PKCS#11 return code only.
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import pkcs11js from "pkcs11js";
import { AppError } from "../domain/errors.js";
import type { Clock } from "../lib/clock.js";
import { generatedKeyTypes, type KeyInfo, type KeyOrigin, type KeyType } from "./key-provider.js";

const T = pkcs11js;
type Handle = Buffer;

/** Where the token is: the vendor's PKCS#11 module, the token's label and the user PIN. */
export interface TokenSettings {
  module: string;
  label: string;
  pin: string;
}

export class TokenError extends Error {}

export interface TokenKeyInfo extends KeyInfo {
  /** access-token-sign: the Ed25519 public key (RFC 8037 `x`), kept in the metadata (public, not secret). */
  publicKey?: string;
}

export interface StoredMetadata {
  id: string;
  type: KeyType;
  version: number;
  algorithm: string;
  kcv: string;
  createdAt: string;
  notAfter?: string;
  retiredAt?: string;
  origin: KeyOrigin;
  publicKey?: string;
}

const APPLICATION = "cardvault-key";
/** The CVK's second object: key A twice (A||A), so 3DES-ECB under it is single DES under A (CVV step 1). */
export const CVK_HALF_SUFFIX = "/a";
const PUBLIC_KEY_VALIDITY_DAYS = 730;

/**
 * EdDSA (PKCS#11 v3.0 §2.3.14-15): SoftHSM 2.6.1 built on OpenSSL ≥ 1.1.1 offers both, but pkcs11js 2.x
 * predates v3.0 and exports neither constant, nor CKK_EC_EDWARDS (v3.0 §2.3.1).
 */
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
const CKK_EC_EDWARDS = 0x40;
/** CKA_EC_PARAMS of Ed25519: the DER of OID 1.3.101.112 (RFC 8410 §3). */
const ED25519_PARAMS = Buffer.from("06032b6570", "hex");

/** The algorithm of a generated key, as listed; an imported zpk or kbpk says its own (tdes-2key, aes-256…). */
const algorithms: Record<KeyType, string> = {
  cvk: "tdes-2key",
  pvk: "tdes-2key",
  "pek-tdes": "tdes-2key",
  "pek-aes": "aes-256",
  "pin-storage": "aes-256",
  "pan-data": "aes-256",
  fingerprint: "hmac-sha256",
  "webhook-secret": "aes-256",
  "secure-data-wrap": "rsa-4096-oaep-sha256",
  "secure-data-sign": "rsa-3072-pss-sha256",
  "access-token-sign": "ed25519",
  zpk: "tdes-2key",
  kbpk: "tdes-2key",
};
const isTdes = (algorithm: string) => algorithm.startsWith("tdes");
const rsaTypes: readonly KeyType[] = ["secure-data-wrap", "secure-data-sign"];

// ---------------------------------------------------------------------------------------------------------
// The module: one per process and path. C_Initialize may run once per process, and SoftHSM reads its token
// directory there; every token of the module shares it.

interface LoadedModule {
  pkcs11: pkcs11js.PKCS11;
  users: number;
}
const modules = new Map<string, LoadedModule>();

export function acquireModule(path: string): pkcs11js.PKCS11 {
  let loaded = modules.get(path);
  if (!loaded) {
    const pkcs11 = new pkcs11js.PKCS11();
    try {
      pkcs11.load(path);
      try {
        pkcs11.C_Initialize({ flags: T.CKF_OS_LOCKING_OK });
      } catch (error) {
        // Another copy of this module (vitest re-evaluates modules per test file) initialised it already.
        if (!isCode(error, "CKR_CRYPTOKI_ALREADY_INITIALIZED")) throw error;
      }
    } catch (error) {
      throw new TokenError(`Cannot load the PKCS#11 module ${path}: ${codeOf(error)}.`);
    }
    loaded = { pkcs11, users: 0 };
    modules.set(path, loaded);
  }
  loaded.users++;
  return loaded.pkcs11;
}

export function releaseModule(path: string): void {
  const loaded = modules.get(path);
  if (!loaded) return;
  loaded.users--;
  if (loaded.users > 0) return;
  modules.delete(path);
  try {
    loaded.pkcs11.C_Finalize();
    loaded.pkcs11.close();
  } catch {
    // Already finalized: nothing to release.
  }
}

/** The PKCS#11 return code of an error (CKR_…), never its message's data. */
export function codeOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /CKR_[A-Z_]+/.exec(message)?.[0] ?? "PKCS#11 error";
}

export function isCode(error: unknown, code: string): boolean {
  return codeOf(error) === code;
}

// ---------------------------------------------------------------------------------------------------------
// The token: sessions and objects.

export interface Token {
  readonly pkcs11: pkcs11js.PKCS11;
  readonly label: string;
  /** The session of the synchronous operations (each is Init + one call, so they never interleave). */
  readonly session: Handle;
  /** A session of its own for an asynchronous operation; give it back with release. */
  acquire(): Promise<Handle>;
  release(session: Handle): void;
  /**
   * Every key's metadata, read from the token's data objects (another process may have added keys); `cached`
   * answers from the last read, updated by this process's own additions (a key ceremony imports many keys).
   */
  readKeys(cached?: boolean): TokenKeyInfo[];
  /** Records metadata this process just wrote, for cached reads. */
  remember(metadata: StoredMetadata): void;
  /** The handle of a key's object (`id`, or `id` + CVK_HALF_SUFFIX); undefined when the token lacks it. */
  object(label: string, objectClass?: number): Handle | undefined;
  close(): void;
}

/** At most this many sessions run asynchronous operations at once (each holds a libuv thread meanwhile). */
const ASYNC_SESSIONS = 4;

export function openToken(settings: TokenSettings): Token {
  const pkcs11 = acquireModule(settings.module);
  let slot: Handle | undefined;
  try {
    slot = pkcs11.C_GetSlotList(true).find((s) => pkcs11.C_GetTokenInfo(s).label.trim() === settings.label);
  } catch (error) {
    releaseModule(settings.module);
    throw new TokenError(`Cannot list the PKCS#11 module's tokens: ${codeOf(error)}.`);
  }
  if (!slot) {
    releaseModule(settings.module);
    throw new TokenError(
      `No token labelled "${settings.label}" in ${settings.module}: initialise it (softhsm2-util --init-token, or the HSM's tools) or set CARDVAULT_PKCS11_TOKEN.`,
    );
  }
  const found = slot;
  const sessions: Handle[] = [];
  const open = (): Handle => {
    const s = pkcs11.C_OpenSession(found, T.CKF_SERIAL_SESSION | T.CKF_RW_SESSION);
    sessions.push(s);
    return s;
  };
  let session: Handle;
  try {
    session = open();
    try {
      pkcs11.C_Login(session, T.CKU_USER, settings.pin);
    } catch (error) {
      // Another provider of this process logged in to the token already: the login is the application's.
      if (!isCode(error, "CKR_USER_ALREADY_LOGGED_IN")) throw error;
    }
  } catch (error) {
    for (const s of sessions) pkcs11.C_CloseSession(s);
    releaseModule(settings.module);
    throw new TokenError(
      `Cannot log in to the token "${settings.label}": ${codeOf(error)} (check CARDVAULT_PKCS11_PIN).`,
    );
  }

  const idle: Handle[] = [];
  let asyncOpen = 0;
  const waiting: ((s: Handle) => void)[] = [];
  let closed = false;
  let known: StoredMetadata[] | undefined;

  function find(template: pkcs11js.Template): Handle[] {
    pkcs11.C_FindObjectsInit(session, template);
    try {
      const out: Handle[] = [];
      for (;;) {
        const batch = pkcs11.C_FindObjects(session, 64);
        if (batch.length === 0) return out;
        out.push(...batch);
      }
    } finally {
      pkcs11.C_FindObjectsFinal(session);
    }
  }

  return {
    pkcs11,
    label: settings.label,
    session,
    async acquire() {
      if (closed) throw new TokenError("The token is closed.");
      const ready = idle.pop();
      if (ready) return ready;
      if (asyncOpen < ASYNC_SESSIONS) {
        asyncOpen++;
        return open();
      }
      return new Promise((resolve) => waiting.push(resolve));
    },
    release(s) {
      const next = waiting.shift();
      if (next) next(s);
      else idle.push(s);
    },
    readKeys(cached = false) {
      if (cached && known) return withState(known);
      const handles = find([
        { type: T.CKA_CLASS, value: T.CKO_DATA },
        { type: T.CKA_APPLICATION, value: APPLICATION },
      ]);
      const stored = handles.map(
        (h) =>
          JSON.parse(
            pkcs11.C_GetAttributeValue(session, h, [{ type: T.CKA_VALUE }])[0]!.value!.toString("utf8"),
          ) as StoredMetadata,
      );
      known = stored;
      return withState(stored);
    },
    remember(metadata) {
      known = [...(known ?? []), metadata];
    },
    object(label, objectClass) {
      const template: pkcs11js.Template = [{ type: T.CKA_LABEL, value: label }];
      if (objectClass !== undefined) template.push({ type: T.CKA_CLASS, value: objectClass });
      else template.push({ type: T.CKA_TOKEN, value: true });
      return find(template).find((h) => {
        const [cls] = pkcs11.C_GetAttributeValue(session, h, [{ type: T.CKA_CLASS }]);
        return cls!.value!.readUInt32LE(0) !== T.CKO_DATA && cls!.value!.readUInt32LE(0) !== T.CKO_PUBLIC_KEY;
      });
    },
    close() {
      if (closed) return;
      closed = true;
      // Closing our sessions only: a C_Logout would log out other providers of this process on the token.
      for (const s of sessions) {
        try {
          pkcs11.C_CloseSession(s);
        } catch {
          // The session is gone already.
        }
      }
      releaseModule(settings.module);
    },
  };
}

/** Active = the newest version of its type that is not retired (as in the local keystore). */
function withState(stored: StoredMetadata[]): TokenKeyInfo[] {
  const newest = new Map<KeyType, number>();
  // The newest *generated* version is active: an imported key (components, TR-31) is used by its id only.
  for (const k of stored) {
    if (!k.retiredAt && k.origin === "generated")
      newest.set(k.type, Math.max(newest.get(k.type) ?? 0, k.version));
  }
  return stored
    .sort((a, b) => a.type.localeCompare(b.type) || a.version - b.version)
    .map((k) => ({
      id: k.id,
      type: k.type,
      version: k.version,
      algorithm: k.algorithm,
      kcv: k.kcv,
      createdAt: k.createdAt,
      ...(k.notAfter ? { notAfter: k.notAfter } : {}),
      ...(k.retiredAt ? { retiredAt: k.retiredAt } : {}),
      active: k.origin === "generated" && newest.get(k.type) === k.version && !k.retiredAt,
      retired: Boolean(k.retiredAt),
      origin: k.origin,
      ...(k.publicKey ? { publicKey: k.publicKey } : {}),
    }));
}

// ---------------------------------------------------------------------------------------------------------
// Templates: what the service needs of each key type, and nothing more.

const bool = (type: number, value: boolean) => ({ type, value });

/** Every key object: a token object, private, sensitive, never extractable, labelled and identified by its id. */
function protectedKey(label: string, id: string): pkcs11js.Template {
  return [
    bool(T.CKA_TOKEN, true),
    bool(T.CKA_PRIVATE, true),
    bool(T.CKA_SENSITIVE, true),
    bool(T.CKA_EXTRACTABLE, false),
    // Modifiable only so that C_CopyObject may make a session copy (pkcs11-provider.ts); PKCS#11 forbids
    // ever turning CKA_SENSITIVE off or CKA_EXTRACTABLE on, whatever CKA_MODIFIABLE says (v2.40 §4.10).
    bool(T.CKA_MODIFIABLE, true),
    { type: T.CKA_LABEL, value: label },
    { type: T.CKA_ID, value: Buffer.from(id) },
  ];
}

/** The secret key template of a type: its PKCS#11 key type and the usages its operations need. */
function secretTemplate(type: KeyType, algorithm: string): pkcs11js.Template {
  const secret = { type: T.CKA_CLASS, value: T.CKO_SECRET_KEY };
  if (isTdes(algorithm)) {
    // CVK and PVK only encipher (CVV, PVV, the check value); a PIN encryption or zone PIN key deciphers PIN
    // blocks (and enciphers zeros for its check value); a KBPK only computes CMACs (TR-31 key derivation
    // and MAC, tr31.ts), with CKM_DES3_CMAC.
    return [
      secret,
      { type: T.CKA_KEY_TYPE, value: algorithm === "tdes-3key" ? T.CKK_DES3 : T.CKK_DES2 },
      bool(T.CKA_ENCRYPT, true),
      bool(T.CKA_DECRYPT, type === "pek-tdes" || type === "zpk"),
      bool(T.CKA_SIGN, type === "kbpk"),
    ];
  }
  if (type === "fingerprint") {
    return [secret, { type: T.CKA_KEY_TYPE, value: T.CKK_GENERIC_SECRET }, bool(T.CKA_SIGN, true)];
  }
  // AES: GCM seal/open (pan-data, webhook-secret), ECB both ways (format-4 PIN blocks), CMAC for the check value.
  return [
    secret,
    { type: T.CKA_KEY_TYPE, value: T.CKK_AES },
    bool(T.CKA_ENCRYPT, true),
    bool(T.CKA_DECRYPT, true),
    bool(T.CKA_SIGN, true),
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Creating keys.

export interface ImportedKey {
  id: string;
  type: KeyType;
  /**
   * Symmetric: the raw bytes. RSA (secure-data-*) and Ed25519 (access-token-sign): the PKCS#8 DER private
   * key. Wiped once in the token.
   */
  material: Buffer;
  origin: KeyOrigin;
  /** zpk, kbpk, a 3-key pek-tdes, a pek-aes: as key-import.ts names it (tdes-2key, aes-128…). */
  algorithm?: string;
}

/** Runs on the check value computed in the token, before the key is recorded; a throw destroys the object. */
export type KcvCheck = (kcv: string) => void;

/**
 * Imports clear key material into the token (C_CreateObject, sensitive, not extractable) as the next version of
 * its type, which becomes the active one; wipes `material`. For key ceremonies (components, TR-31) and tests.
 */
export function importSecretKey(
  token: Token,
  key: ImportedKey,
  clock: Clock,
  checkKcv?: KcvCheck,
): TokenKeyInfo {
  const { id, type, material } = key;
  const algorithm = key.algorithm ?? algorithmOfLength(type, material.length);
  const { pkcs11, session } = token;
  const created: Handle[] = [];
  let publicKey: string | undefined;
  try {
    assertNewId(token, id);
    if (rsaTypes.includes(type)) {
      created.push(pkcs11.C_CreateObject(session, rsaPrivateTemplate(id, type, material)));
    } else if (type === "access-token-sign") {
      const template = ed25519PrivateTemplate(id, material);
      publicKey = template.x;
      created.push(pkcs11.C_CreateObject(session, template.template));
    } else {
      assertLength(type, algorithm, material);
      created.push(
        pkcs11.C_CreateObject(session, [
          ...protectedKey(id, id),
          ...secretTemplate(type, algorithm),
          { type: T.CKA_VALUE, value: material },
        ]),
      );
      if (type === "cvk") {
        const a = material.subarray(0, 8);
        const half = Buffer.concat([a, a]);
        try {
          created.push(
            pkcs11.C_CreateObject(session, [
              ...protectedKey(id + CVK_HALF_SUFFIX, id),
              ...secretTemplate("cvk", algorithm),
              { type: T.CKA_VALUE, value: half },
            ]),
          );
        } finally {
          half.fill(0);
        }
      }
    }
    return writeMetadata(
      token,
      created,
      { id, type, origin: key.origin, algorithm, ...(publicKey ? { publicKey } : {}) },
      clock,
      checkKcv,
    );
  } catch (error) {
    for (const h of created) destroyQuietly(token, h);
    if (error instanceof TokenError || error instanceof AppError) throw error;
    throw new TokenError(`Cannot import key ${id} (${type}) into the token: ${codeOf(error)}.`);
  } finally {
    material.fill(0);
  }
}

/**
 * Generates the next version of a type inside the token (C_GenerateKey, C_GenerateKeyPair) and makes it
 * active. A CVK is the one exception to "never outside": CVV step 1 is single DES under its left half, which
 * SoftHSM (OpenSSL 3) cannot run and PKCS#11 cannot split off a key object, so a CVK is drawn from the token's
 * RNG (C_GenerateRandom) and created as two objects (A||B and A||A), its bytes wiped at once.
 */
export async function generateKey(
  token: Token,
  type: KeyType,
  clock: Clock,
  id?: string,
): Promise<TokenKeyInfo> {
  const keyId = id ?? nextKeyId(token, type);
  assertNewId(token, keyId);
  const { pkcs11 } = token;
  const session = await token.acquire();
  const created: Handle[] = [];
  let publicKey: string | undefined;
  try {
    if (type === "cvk") {
      const material = adjustParity(pkcs11.C_GenerateRandom(session, Buffer.alloc(16)));
      return importSecretKey(token, { id: keyId, type, material, origin: "generated" }, clock);
    }
    if (rsaTypes.includes(type)) {
      const bits = type === "secure-data-wrap" ? 4096 : 3072;
      const pair = await pkcs11.C_GenerateKeyPairAsync(
        session,
        { mechanism: T.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          bool(T.CKA_TOKEN, false),
          { type: T.CKA_MODULUS_BITS, value: bits },
          { type: T.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          bool(T.CKA_VERIFY, true),
          bool(T.CKA_ENCRYPT, true),
        ],
        [...protectedKey(keyId, keyId), ...rsaUsages(type)],
      );
      destroyQuietly(token, pair.publicKey);
      created.push(pair.privateKey);
    } else if (type === "access-token-sign") {
      // Ed25519 inside the token (CKM_EC_EDWARDS_KEY_PAIR_GEN); the public key, a session object, is read
      // (CKA_EC_POINT: a DER OCTET STRING of the 32-byte point) into the metadata and destroyed.
      const pair = await pkcs11.C_GenerateKeyPairAsync(
        session,
        { mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN },
        [
          bool(T.CKA_TOKEN, false),
          { type: T.CKA_EC_PARAMS, value: ED25519_PARAMS },
          bool(T.CKA_VERIFY, true),
        ],
        [
          ...protectedKey(keyId, keyId),
          { type: T.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
          bool(T.CKA_SIGN, true),
        ],
      );
      const [point] = pkcs11.C_GetAttributeValue(session, pair.publicKey, [{ type: T.CKA_EC_POINT }]);
      destroyQuietly(token, pair.publicKey);
      created.push(pair.privateKey);
      publicKey = ecPointX(point!.value!).toString("base64url");
    } else {
      const algorithm = algorithms[type];
      const mechanism =
        type === "fingerprint"
          ? T.CKM_GENERIC_SECRET_KEY_GEN
          : isTdes(algorithm)
            ? T.CKM_DES2_KEY_GEN
            : T.CKM_AES_KEY_GEN;
      const template = [...protectedKey(keyId, keyId), ...secretTemplate(type, algorithm)];
      if (!isTdes(algorithm)) template.push({ type: T.CKA_VALUE_LEN, value: 32 });
      created.push(await pkcs11.C_GenerateKeyAsync(session, { mechanism }, template));
    }
    return writeMetadata(
      token,
      created,
      {
        id: keyId,
        type,
        origin: "generated",
        algorithm: algorithms[type],
        ...(publicKey ? { publicKey } : {}),
      },
      clock,
    );
  } catch (error) {
    for (const h of created) destroyQuietly(token, h);
    if (error instanceof TokenError) throw error;
    throw new TokenError(`Cannot generate key ${keyId} (${type}) in the token: ${codeOf(error)}.`);
  } finally {
    token.release(session);
  }
}

/** `keys init` on a token: version 1 of every type it lacks, generated inside. Returns the ids created. */
export async function initTokenKeys(token: Token, clock: Clock): Promise<string[]> {
  const have = new Set(token.readKeys().map((k) => k.type));
  const created: string[] = [];
  for (const type of generatedKeyTypes) {
    if (have.has(type)) continue;
    created.push((await generateKey(token, type, clock)).id);
  }
  return created;
}

/**
 * Marks key versions retired in their metadata (every ciphertext they sealed was re-encrypted). The active
 * version of a type cannot be retired. Returns the ids changed.
 */
export function retireTokenKeys(token: Token, ids: readonly string[], clock: Clock): string[] {
  const { pkcs11, session } = token;
  const retired: string[] = [];
  for (const k of token.readKeys()) {
    if (!ids.includes(k.id) || k.retired) continue;
    if (k.active) throw new TokenError(`Key ${k.id} is the active ${k.type} key; rotate first.`);
    pkcs11.C_FindObjectsInit(session, [
      { type: T.CKA_CLASS, value: T.CKO_DATA },
      { type: T.CKA_APPLICATION, value: APPLICATION },
      { type: T.CKA_LABEL, value: k.id },
    ]);
    const [handle] = pkcs11.C_FindObjects(session, 1);
    pkcs11.C_FindObjectsFinal(session);
    if (!handle) continue;
    const stored = JSON.parse(
      pkcs11.C_GetAttributeValue(session, handle, [{ type: T.CKA_VALUE }])[0]!.value!.toString("utf8"),
    ) as StoredMetadata;
    stored.retiredAt = clock.now().toISOString();
    pkcs11.C_SetAttributeValue(session, handle, [
      { type: T.CKA_VALUE, value: Buffer.from(JSON.stringify(stored)) },
    ]);
    retired.push(k.id);
  }
  token.readKeys();
  return retired;
}

/** The id of the next version of a type (generated or imported: versions are counted across both). */
export function nextKeyId(token: Token, type: KeyType): string {
  return `${type}-v${nextVersion(token, type)}`;
}

function nextVersion(token: Token, type: KeyType): number {
  return (
    Math.max(
      0,
      ...token
        .readKeys(true)
        .filter((k) => k.type === type)
        .map((k) => k.version),
    ) + 1
  );
}

function assertNewId(token: Token, id: string): void {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
    throw new TokenError(
      `A key id is 1-64 letters, digits, ".", "_" or "-" (got one of ${id.length} characters).`,
    );
  }
  if (token.readKeys(true).some((k) => k.id === id))
    throw new TokenError(`The token already holds a key ${id}.`);
}

/** The algorithm of clear material whose caller named none (tests, benches): TDES types by type, AES by length. */
function algorithmOfLength(type: KeyType, length: number): string {
  if (["cvk", "pvk", "pek-tdes"].includes(type)) return length === 24 ? "tdes-3key" : "tdes-2key";
  if (["pek-aes", "zpk", "kbpk"].includes(type) || algorithms[type].startsWith("aes"))
    return `aes-${length * 8}`;
  return algorithms[type];
}

function assertLength(type: KeyType, algorithm: string, material: Buffer): void {
  const ok = isTdes(algorithm)
    ? material.length === (algorithm === "tdes-3key" ? 24 : 16) && (type !== "cvk" || material.length === 16)
    : type === "fingerprint"
      ? material.length >= 16
      : ["pek-aes", "zpk", "kbpk"].includes(type)
        ? [16, 24, 32].includes(material.length)
        : material.length === 32;
  if (!ok) throw new TokenError(`A ${type} key of ${material.length} bytes is not valid for its type.`);
}

/** An Ed25519 private key object from PKCS#8 DER: CKA_VALUE is the 32-byte seed (PKCS#11 v3.0 §2.3.5). */
function ed25519PrivateTemplate(id: string, der: Buffer): { template: pkcs11js.Template; x: string } {
  const jwk = createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ format: "jwk" });
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.d || !jwk.x)
    throw new TokenError(`Key ${id} (access-token-sign) is not an Ed25519 private key.`);
  return {
    template: [
      { type: T.CKA_CLASS, value: T.CKO_PRIVATE_KEY },
      { type: T.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
      ...protectedKey(id, id),
      bool(T.CKA_SIGN, true),
      { type: T.CKA_EC_PARAMS, value: ED25519_PARAMS },
      { type: T.CKA_VALUE, value: Buffer.from(jwk.d, "base64url") },
    ],
    x: jwk.x,
  };
}

/** The 32-byte point of CKA_EC_POINT, a DER OCTET STRING (04 20 ‖ x) or, from some tokens, the bare point. */
function ecPointX(point: Buffer): Buffer {
  return point.length === 34 && point[0] === 0x04 && point[1] === 0x20 ? point.subarray(2) : point;
}

/** An Ed25519 public key (its `x`) as a node KeyObject. */
export function ed25519PublicKey(x: string): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
}

function rsaUsages(type: KeyType): pkcs11js.Template {
  return type === "secure-data-wrap"
    ? [bool(T.CKA_DECRYPT, true), bool(T.CKA_UNWRAP, true), bool(T.CKA_SIGN, false)]
    : [bool(T.CKA_SIGN, true), bool(T.CKA_DECRYPT, false), bool(T.CKA_UNWRAP, false)];
}

function rsaPrivateTemplate(id: string, type: KeyType, der: Buffer): pkcs11js.Template {
  const jwk = createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ format: "jwk" });
  if (jwk.kty !== "RSA") throw new TokenError(`Key ${id} (${type}) is not an RSA private key.`);
  const b = (v: string | undefined) => Buffer.from(v ?? "", "base64url");
  return [
    { type: T.CKA_CLASS, value: T.CKO_PRIVATE_KEY },
    { type: T.CKA_KEY_TYPE, value: T.CKK_RSA },
    ...protectedKey(id, id),
    ...rsaUsages(type),
    { type: T.CKA_MODULUS, value: b(jwk.n) },
    { type: T.CKA_PUBLIC_EXPONENT, value: b(jwk.e) },
    { type: T.CKA_PRIVATE_EXPONENT, value: b(jwk.d) },
    { type: T.CKA_PRIME_1, value: b(jwk.p) },
    { type: T.CKA_PRIME_2, value: b(jwk.q) },
    { type: T.CKA_EXPONENT_1, value: b(jwk.dp) },
    { type: T.CKA_EXPONENT_2, value: b(jwk.dq) },
    { type: T.CKA_COEFFICIENT, value: b(jwk.qi) },
  ];
}

/** The public half of an RSA key object (modulus and exponent are not sensitive), as a node KeyObject. */
export function rsaPublicKey(token: Token, handle: Handle) {
  const [n, e] = token.pkcs11.C_GetAttributeValue(token.session, handle, [
    { type: T.CKA_MODULUS },
    { type: T.CKA_PUBLIC_EXPONENT },
  ]);
  return createPublicKey({
    key: { kty: "RSA", n: n!.value!.toString("base64url"), e: e!.value!.toString("base64url") },
    format: "jwk",
  });
}

/** The check value, computed in the token (RSA: from the public key), and the metadata object beside the key. */
function writeMetadata(
  token: Token,
  created: Handle[],
  key: { id: string; type: KeyType; origin: KeyOrigin; algorithm: string; publicKey?: string },
  clock: Clock,
  checkKcv?: KcvCheck,
): TokenKeyInfo {
  const { pkcs11, session } = token;
  const handle = created[0]!;
  let algorithm = key.algorithm;
  let kcv: string;
  if (key.type === "access-token-sign") {
    // As the local keystore: the start of the SHA-256 of the public key's SPKI, which anyone can check.
    const spki = ed25519PublicKey(key.publicKey!).export({ type: "spki", format: "der" });
    kcv = createHash("sha256").update(spki).digest("hex").slice(0, 6).toUpperCase();
  } else if (rsaTypes.includes(key.type)) {
    const publicKey = rsaPublicKey(token, handle);
    const bits = publicKey.asymmetricKeyDetails?.modulusLength;
    algorithm = key.type === "secure-data-wrap" ? `rsa-${bits}-oaep-sha256` : `rsa-${bits}-pss-sha256`;
    const spki = publicKey.export({ type: "spki", format: "der" });
    kcv = createHash("sha256").update(spki).digest("hex").slice(0, 6).toUpperCase();
  } else if (isTdes(algorithm)) {
    pkcs11.C_EncryptInit(session, { mechanism: T.CKM_DES3_ECB }, handle);
    kcv = hex3(pkcs11.C_Encrypt(session, Buffer.alloc(8), Buffer.alloc(8)));
  } else if (key.type === "fingerprint") {
    pkcs11.C_SignInit(session, { mechanism: T.CKM_SHA256_HMAC }, handle);
    kcv = hex3(pkcs11.C_Sign(session, Buffer.alloc(16), Buffer.alloc(32)));
  } else {
    const [len] = pkcs11.C_GetAttributeValue(session, handle, [{ type: T.CKA_VALUE_LEN }]);
    algorithm = `aes-${len!.value!.readUInt32LE(0) * 8}`;
    pkcs11.C_SignInit(session, { mechanism: T.CKM_AES_CMAC }, handle);
    kcv = hex3(pkcs11.C_Sign(session, Buffer.alloc(16), Buffer.alloc(16)));
  }
  checkKcv?.(kcv);
  const now = clock.now();
  const metadata: StoredMetadata = {
    id: key.id,
    type: key.type,
    version: nextVersion(token, key.type),
    algorithm,
    kcv,
    createdAt: now.toISOString(),
    ...(rsaTypes.includes(key.type) || key.type === "access-token-sign"
      ? { notAfter: new Date(now.getTime() + PUBLIC_KEY_VALIDITY_DAYS * 86_400_000).toISOString() }
      : {}),
    origin: key.origin,
    ...(key.publicKey ? { publicKey: key.publicKey } : {}),
  };
  pkcs11.C_CreateObject(session, [
    { type: T.CKA_CLASS, value: T.CKO_DATA },
    bool(T.CKA_TOKEN, true),
    bool(T.CKA_PRIVATE, true),
    { type: T.CKA_APPLICATION, value: APPLICATION },
    { type: T.CKA_LABEL, value: key.id },
    { type: T.CKA_VALUE, value: Buffer.from(JSON.stringify(metadata)) },
  ]);
  token.remember(metadata);
  return token.readKeys(true).find((k) => k.id === key.id)!;
}

const hex3 = (bytes: Buffer) => bytes.subarray(0, 3).toString("hex").toUpperCase();

function destroyQuietly(token: Token, handle: Handle): void {
  try {
    token.pkcs11.C_DestroyObject(token.session, handle);
  } catch {
    // Nothing left to destroy.
  }
}

/** DES keys conventionally carry odd parity in each byte's low bit. */
function adjustParity(key: Buffer): Buffer {
  for (let i = 0; i < key.length; i++) {
    const high = key[i]! & 0xfe;
    let ones = 0;
    for (let b = high; b; b >>= 1) ones += b & 1;
    key[i] = high | (ones % 2 === 0 ? 1 : 0);
  }
  return key;
}
