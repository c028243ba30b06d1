// The local KeyProvider: keys from the keystore file, held in memory, used through node:crypto. Ciphers and
// generators are built once per key and reused, because CVV and PIN checks sit on the authorisation path.
// Every ciphertext names the key that made it, so keys can rotate while old ciphertexts stay readable.
// The card operations (CVV, PIN, PAN and webhook-secret sealing) are card-operations.ts over this file's keys and
// primitives; a card's PAN is opened in one place, its panOf(), and only for the operation at hand. Get Card Data's private-key
// operations run on the provider's worker threads (device-crypto-pool.ts), never on the event loop.
// Ceremonies (importKey, importKeyBlock) check the key by key-import.ts's rules, store it through the keystore
// file's importer and use it at once; the TR-31 KBPK is used only through its CMAC, as in a token.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import { type JWK, SignJWT } from "jose";
import { computeCvv, computeCvvBatch, createCvvGenerator } from "../crypto/cvv.js";
import { CryptoInputError } from "../crypto/errors.js";
import { aesCmac, keyCheckValue, tdesCmac } from "../crypto/kcv.js";
import { createPinBlockCipher } from "../crypto/pin-block.js";
import { computePvv, createPvvGenerator } from "../crypto/pvv.js";
import { unwrapKeyBlock } from "../crypto/tr31.js";
import { AppError } from "../domain/errors.js";
import { cardDataPayload } from "./card-data.js";
import { cardOperations, ENVELOPE_VERSION } from "./card-operations.js";
import {
  createDeviceCryptoPool,
  type DeviceCryptoPoolSettings,
  defaultDeviceCryptoPool,
} from "./device-crypto-pool.js";
import { deviceKeyOf, sessionKeyInvalid } from "./device-key.js";
import { assertKcv, checkKeyBlockHeader, expectedKcv, familyOf, importedKey } from "./key-import.js";
import type {
  AccessTokenPublicKey,
  CardDataField,
  DeviceRequest,
  DeviceSession,
  KeyImport,
  KeyInfo,
  KeyProvider,
  KeyType,
  SealedCardData,
  SealedPinCard,
  SecureDataPublicKey,
} from "./key-provider.js";
import type { ClearKey, ImportedKeyEntry } from "./keystore-file.js";
import { keysById, operatorCheck } from "./provider-shared.js";

/**
 * Where a running provider learns of new key versions (`keys rotate` in another process): returns the keys
 * when the keystore changed since the last successful load, undefined otherwise. Must be cheap (a stat).
 */
export type KeystoreReload = () => ClearKey[] | undefined;

/** How often sealing checks the keystore for a new active version; an unknown key id checks at once. */
const RELOAD_CHECK_MS = 1000;

/** Stores an imported key (keystore-file.ts addImportedKey: next version, sealed) and returns it as loaded. */
export type KeyImporter = (entry: ImportedKeyEntry) => ClearKey;

export interface LocalKeyProviderOptions {
  /** Get Card Data's worker threads (config.secureDataPool); default defaultDeviceCryptoPool(). */
  pool?: DeviceCryptoPoolSettings;
  /** Where ceremonies store what they import; without one, importKey and importKeyBlock are refused. */
  importer?: KeyImporter;
}

export function createLocalKeyProvider(
  initial: ClearKey[],
  reload?: KeystoreReload,
  options: LocalKeyProviderOptions = {},
): KeyProvider {
  let keys = initial;
  let byId = new Map(keys.map((k) => [k.id, k]));
  const active = new Map<KeyType, ClearKey>();
  for (const k of keys) if (k.active) active.set(k.type, k);
  let lastCheck = performance.now();

  // The card operations over this keystore's keys (card-operations.ts), and the helpers the rest of it shares.
  const finder = keysById(() => byId, refresh, "keystore");
  const { key } = finder;
  const card = cardOperations<ClearKey>({
    ...finder,
    activeKey,
    sealText,
    openText,
    fingerprintOf,
    cvvGenerator: (cvk) => createCvvGenerator(cvk.material),
    cvvBatch: (cvk, inputs) => computeCvvBatch(cvk.material, inputs),
    pvvGenerator: (pvk) => createPvvGenerator(pvk.material),
    pinBlockCipher: (k) => createPinBlockCipher(k.material, familyOf(k.algorithm)),
  });
  const { panOf, cvvOf, openCheckedPin } = card;
  // RSA keys are parsed once: a 4096-bit PKCS#8 parse costs more than the CVV it protects.
  const privateKeys = new Map<string, KeyObject>();

  function privateKeyOf(k: ClearKey): KeyObject {
    let parsed = privateKeys.get(k.id);
    if (!parsed) {
      parsed = createPrivateKey({ key: k.material, format: "der", type: "pkcs8" });
      privateKeys.set(k.id, parsed);
    }
    return parsed;
  }

  const publicKeysOf = (keys: ClearKey[]): SecureDataPublicKey[] =>
    keys
      .filter((k) => k.type === "secure-data-wrap" || k.type === "secure-data-sign")
      .map((k) => {
        const publicKey = createPublicKey(privateKeyOf(k));
        const { n, e, kty } = publicKey.export({ format: "jwk" });
        const wrap = k.type === "secure-data-wrap";
        return {
          kid: k.id,
          use: wrap ? "wrap" : "sign",
          alg: wrap ? "RSA-OAEP-256" : "PS256",
          active: k.active,
          createdAt: k.createdAt,
          notAfter: k.notAfter ?? k.createdAt,
          jwk: {
            kty: kty!,
            n: n!,
            e: e!,
            kid: k.id,
            use: wrap ? "enc" : "sig",
            alg: wrap ? "RSA-OAEP-256" : "PS256",
          },
          pem: publicKey.export({ type: "spki", format: "pem" }).toString(),
        };
      });
  let secureDataKeys = publicKeysOf(keys);

  const accessTokenKeysOf = (keys: ClearKey[]): AccessTokenPublicKey[] =>
    keys
      .filter((k) => k.type === "access-token-sign" && !k.retired)
      .map((k) => {
        const { x } = createPublicKey(privateKeyOf(k)).export({ format: "jwk" });
        return {
          kid: k.id,
          active: k.active,
          createdAt: k.createdAt,
          notAfter: k.notAfter ?? k.createdAt,
          jwk: { kty: "OKP", crv: "Ed25519", x: x!, kid: k.id, use: "sig", alg: "EdDSA" },
        };
      });
  let accessTokenKeys = accessTokenKeysOf(keys);

  const isSecureData = (k: ClearKey) => k.type === "secure-data-wrap" || k.type === "secure-data-sign";
  const secureDataIds = (list: ClearKey[]) =>
    list
      .filter(isSecureData)
      .map((k) => k.id)
      .join();
  const pool = createDeviceCryptoPool(options.pool ?? defaultDeviceCryptoPool());
  const usePoolKeys = () =>
    pool.useKeys(new Map(keys.filter(isSecureData).map((k) => [k.id, privateKeyOf(k)])));
  usePoolKeys();

  /** Adopts a newer keystore: new versions become usable, the newest becomes active. Caches stay (ids are immutable). */
  function refresh(now: boolean): void {
    if (!reload) return;
    const t = performance.now();
    if (!now && t - lastCheck < RELOAD_CHECK_MS) return;
    lastCheck = t;
    const next = reload();
    if (!next) return;
    const secureDataChanged = secureDataIds(next) !== secureDataIds(keys);
    keys = next;
    byId = new Map(keys.map((k) => [k.id, k]));
    active.clear();
    for (const k of keys) if (k.active) active.set(k.type, k);
    secureDataKeys = publicKeysOf(keys);
    accessTokenKeys = accessTokenKeysOf(keys);
    if (secureDataChanged) usePoolKeys();
  }

  /** The wrap keys a session key may be wrapped under: the active one first, then retired ones still valid. */
  function wrapKeysFor(now: Date, keyId: string | undefined): ClearKey[] {
    const valid = (k: ClearKey) =>
      k.type === "secure-data-wrap" && (k.active || (k.notAfter ?? "") > now.toISOString());
    if (keyId !== undefined) {
      const k = byId.get(keyId);
      if (!k || !valid(k)) {
        throw new AppError(
          "validation_failed",
          "keyId does not name a current wrap key; see GET /v1/secure-data/keys.",
          {
            fields: { keyId: ["must name a current secure-data-wrap key"] },
          },
        );
      }
      return [k];
    }
    return keys.filter(valid).sort((a, b) => Number(b.active) - Number(a.active) || b.version - a.version);
  }

  /** RSA-OAEP-SHA256 under the first candidate of the ciphertext's size that opens it (on the pool). */
  async function unwrapSessionKey(wrappedKey: Buffer, candidates: ClearKey[]) {
    const bits = wrappedKey.length * 8;
    const ids = candidates
      .filter((k) => privateKeyOf(k).asymmetricKeyDetails?.modulusLength === bits)
      .map((k) => k.id);
    const unwrapped = ids.length > 0 ? await pool.unwrap(wrappedKey, ids) : undefined;
    if (!unwrapped) throw sessionKeyInvalid();
    return unwrapped;
  }

  /** Get Card Data's steps for one device request (DeviceSession in key-provider.ts). */
  function deviceSession(request: DeviceRequest): DeviceSession {
    const release = pool.admit();
    let opened:
      | ({ replayId: string } & ({ sessionKey: Buffer; wrapKeyId: string } | { device: JWK }))
      | undefined;
    let closed = false;
    /** What this session sealed, for its signature: the ciphertext and IV, or the payload awaiting its JWS. */
    const contents = new WeakMap<
      SealedCardData,
      { iv: Buffer; encryptedPayload: Buffer } | { payload: Buffer }
    >();
    const payloads: Buffer[] = [];

    return {
      async open() {
        if ("deviceKey" in request) {
          const { jwk, replayId } = await deviceKeyOf(request.deviceKey);
          opened = { device: jwk, replayId };
          return;
        }
        const { key: sessionKey, wrapKeyId } = await unwrapSessionKey(
          request.wrappedKey,
          wrapKeysFor(request.now, request.keyId),
        );
        const replayId = createHash("sha256")
          .update("cardvault:secure-data:session-key:")
          .update(sessionKey)
          .digest("base64url");
        opened = { sessionKey, wrapKeyId, replayId };
        // Closed while it was unwrapping: nothing may keep the key.
        if (closed) sessionKey.fill(0);
      },

      get replayId() {
        if (!opened) throw new Error("Open the device session first.");
        return opened.replayId;
      },

      async seal(card, fields) {
        if (!opened || closed) throw new Error("Seal on an open device session only.");
        const signer = activeKey("secure-data-sign");
        const payload = payloadOf(card, fields);
        if ("device" in opened) {
          const sealed: SealedCardData = { method: "ecdh-es+a256gcm", signingKeyId: signer.id };
          payloads.push(payload);
          contents.set(sealed, { payload });
          return sealed;
        }
        try {
          const iv = randomBytes(16);
          const cipher = createCipheriv("aes-256-cbc", opened.sessionKey, iv);
          const encryptedPayload = Buffer.concat([cipher.update(payload), cipher.final()]);
          const sealed: SealedCardData = {
            method: "rsa-oaep+aes-cbc",
            wrapKeyId: opened.wrapKeyId,
            signingKeyId: signer.id,
          };
          contents.set(sealed, { iv, encryptedPayload });
          return sealed;
        } finally {
          payload.fill(0);
        }
      },

      async sign(sealed) {
        const content = contents.get(sealed);
        if (!opened || closed || !content) throw new Error("Sign what this open device session sealed only.");
        const { signingKeyId } = sealed;
        if ("payload" in content) {
          if (!("device" in opened)) throw new Error("A JWE payload needs a device key.");
          return {
            kind: "jwe",
            jwe: await pool.jwe(signingKeyId, content.payload, opened.device),
            signingKeyId,
          };
        }
        if (!("sessionKey" in opened)) throw new Error("An AES-CBC payload needs a session key.");
        const { iv, encryptedPayload } = content;
        const signature = await pool.sign(signingKeyId, Buffer.concat([encryptedPayload, iv]));
        return { kind: "rsa", iv, encryptedPayload, signature, wrapKeyId: opened.wrapKeyId, signingKeyId };
      },

      close() {
        if (closed) return;
        closed = true;
        if (opened && "sessionKey" in opened) opened.sessionKey.fill(0);
        for (const payload of payloads) payload.fill(0);
        release();
      },
    };
  }

  /** A ceremony's key: checked (type, length, parity, check value) before anything is stored. */
  async function importKey(request: KeyImport): Promise<KeyInfo> {
    const kcv = expectedKcv(request.kcv);
    const { algorithm, material } = importedKey(request);
    try {
      assertKcv(checkValue(algorithm, material), kcv);
      if (!options.importer) {
        throw new AppError("key_unavailable", "This key provider has no keystore to import keys into.");
      }
      const added = options.importer({ type: request.type, algorithm, material, origin: request.origin });
      keys = [...keys, added];
      byId.set(added.id, added);
      const { material: _material, ...info } = added;
      return info;
    } finally {
      material.fill(0);
    }
  }

  function activeKey(type: KeyType): ClearKey {
    refresh(false);
    const k = active.get(type);
    if (!k) throw new AppError("key_unavailable", `The keystore has no active ${type} key.`);
    return k;
  }

  /** HMAC-SHA-256 under the active fingerprint key, named by it. */
  function fingerprintOf(pan: string): string {
    const k = activeKey("fingerprint");
    return `${k.id}:${createHmac("sha256", k.material).update(pan).digest("base64url")}`;
  }

  /** Get Card Data's clear payload; the caller wipes it once encrypted. */
  function payloadOf(card: SealedPinCard, fields: readonly CardDataField[]): Buffer {
    const pan = panOf(card);
    return cardDataPayload(fields, {
      pan: () => pan,
      cvv: () => cvvOf(card, pan),
      expiry: card.expiry,
      pin: () => openCheckedPin(pan, card.pin),
    });
  }

  /** AES-256-GCM envelope "v1:<key id>:<nonce>:<ciphertext‖tag>", the AAD binding it to its row. */
  function sealText(type: KeyType, text: string, aad: Buffer): string {
    const k = activeKey(type);
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", k.material, nonce);
    cipher.setAAD(aad);
    const ct = Buffer.concat([cipher.update(text, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return [ENVELOPE_VERSION, k.id, nonce.toString("base64url"), ct.toString("base64url")].join(":");
  }

  function openText(sealed: string, type: KeyType, aad: Buffer, what: string): string {
    const [version, kid, nonce, ct] = sealed.split(":");
    if (version !== ENVELOPE_VERSION || !kid || !nonce || !ct) {
      throw new AppError("key_unavailable", `A sealed ${what} is damaged (unknown envelope).`);
    }
    const k = key(kid, type);
    const raw = Buffer.from(ct, "base64url");
    try {
      const decipher = createDecipheriv("aes-256-gcm", k.material, Buffer.from(nonce, "base64url"));
      decipher.setAAD(aad);
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString(
        "utf8",
      );
    } catch {
      throw new AppError(
        "key_unavailable",
        `A sealed ${what} does not open under key ${kid}: the ciphertext is damaged or the key is wrong.`,
      );
    }
  }

  return {
    activeKeyId: (type) => activeKey(type).id,
    listKeys: (): KeyInfo[] => keys.map(({ material: _material, ...info }) => info),

    ...card.operations,

    secureDataKeys: () => secureDataKeys.map((k) => ({ ...k, jwk: { ...k.jwk } })),

    async signAccessToken(claims) {
      refresh(false);
      const signer = activeKey("access-token-sign");
      return new SignJWT(claims)
        .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: signer.id })
        .sign(privateKeyOf(signer));
    },
    accessTokenPublicKeys() {
      refresh(false);
      return accessTokenKeys.map((k) => ({ ...k, jwk: { ...k.jwk } }));
    },

    deviceSession,

    importKey,
    async importKeyBlock({ type, block, kbpkId, kcv }) {
      if (!byId.has(kbpkId)) refresh(true);
      const kbpk = byId.get(kbpkId);
      if (kbpk?.type !== "kbpk") {
        throw new AppError("validation_failed", `${kbpkId} names no kbpk key in the keystore.`, {
          fields: { kbpkId: ["must name a kbpk (key block protection key)"] },
        });
      }
      const family = familyOf(kbpk.algorithm);
      let unwrapped: ReturnType<typeof unwrapKeyBlock>;
      try {
        unwrapped = unwrapKeyBlock(block, {
          algorithm: family,
          length: kbpk.material.length,
          cmac: (data) => (family === "tdes" ? tdesCmac(kbpk.material, data) : aesCmac(kbpk.material, data)),
        });
      } catch (error) {
        if (!(error instanceof CryptoInputError)) throw error;
        throw new AppError("validation_failed", `The key block is refused: ${error.message}.`, {
          fields: { block: [error.message] },
        });
      }
      try {
        const algorithm = checkKeyBlockHeader(type, unwrapped.header);
        return await importKey({ type, material: unwrapped.key, origin: "tr31", algorithm, kcv });
      } finally {
        unwrapped.key.fill(0);
      }
    },
    async computeCvv({ keyId, pan, expiry, serviceCode }) {
      return operatorCheck(() => computeCvv({ cvk: key(keyId, "cvk").material, pan, expiry, serviceCode }));
    },
    async computePvv({ keyId, pvki, pan, pin }) {
      return operatorCheck(() => computePvv({ pvk: key(keyId, "pvk").material, pvki, pan, pin }));
    },

    close: () => pool.close(),
  };
}

/** A symmetric key's check value as keys are listed (3 bytes): TDES-ECB of zeros or AES-CMAC of a zero block. */
function checkValue(algorithm: string, material: Buffer): string {
  return keyCheckValue(material, familyOf(algorithm), 3);
}
