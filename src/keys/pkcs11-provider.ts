// The PKCS#11 KeyProvider: the same contract as the local keystore (key-provider.contract.ts), with every
// cipher, MAC and signature run inside the token on key objects that are sensitive and never extractable
// (pkcs11-token.ts). The arithmetic around the ciphers (the Visa CVV/PVV methods, ISO 9564 PIN blocks, the
// envelope formats) is src/crypto and the same code as the local provider's, so stored data moves between them:
// - CVV: C_Encrypt CKM_DES3_ECB under the CVK's A||A object (single DES under A) and its A||B object; PVV:
//   CKM_DES3_ECB under the PVK; PIN blocks: CKM_DES3_ECB (formats 0, 1, 3) and CKM_AES_ECB (format 4).
// - PANs and webhook secrets: CKM_AES_GCM, 12-byte nonce, the binding as AAD, envelope v1:<key>:<nonce>:<ct‖tag>;
//   fingerprints: CKM_SHA256_HMAC.
// - Get Card Data: the device's session key unwrapped (CKM_RSA_PKCS_OAEP, SHA-256) into a session object that
//   never leaves the token, the payload CKM_AES_CBC_PAD under it, signed CKM_SHA256_RSA_PKCS_PSS; the object is
//   destroyed on close. The JWE path signs its JWS in the token; the ECDH-ES to the device's ephemeral key is
//   jose's, as in the local provider (SoftHSM's CKM_ECDH1_DERIVE KDFs are not JOSE's Concat KDF).
// Short operations (one or two DES/AES blocks, microseconds in the token) are synchronous calls on one session;
// RSA operations (milliseconds) run through pkcs11js's *Async forms on pooled sessions, off the event loop.
// - Key ceremonies: importKey creates the object (C_CreateObject, sensitive, not extractable) after key-import.ts's
//   rules, computes its check value in the token and destroys it on a mismatch; importKeyBlock unwraps TR-31 with
//   the KBPK computing only CMACs in the token (CKM_DES3_CMAC / CKM_AES_CMAC through C_Sign).
// - OAuth access tokens: the JWS signing input signed CKM_EDDSA (Ed25519, PKCS#11 v3.0) on the token's key; the
//   public half is kept in the key's metadata.
// The card operations are card-operations.ts over the token's primitives, as in the local provider: a card's PAN
// is opened in one place, panOf(), for the operation at hand.
import { randomBytes } from "node:crypto";
import { CompactEncrypt, importJWK } from "jose";
import pkcs11js from "pkcs11js";
import type { BlockCipher } from "../crypto/block-cipher.js";
import { computeCvvBatchOver, createCvvGeneratorOver } from "../crypto/cvv.js";
import { CryptoInputError } from "../crypto/errors.js";
import { pinBlockCipherOver } from "../crypto/pin-block.js";
import { createPvvGeneratorOver } from "../crypto/pvv.js";
import { unwrapKeyBlock } from "../crypto/tr31.js";
import { AppError, OverloadedError } from "../domain/errors.js";
import { type Clock, systemClock } from "../lib/clock.js";
import { cardDataPayload } from "./card-data.js";
import { cardOperations, ENVELOPE_VERSION } from "./card-operations.js";
import type { DeviceCryptoPoolSettings } from "./device-crypto-pool.js";
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
import { oaepDecodeSha256 } from "./oaep-decode.js";
import {
  CKM_EDDSA,
  CVK_HALF_SUFFIX,
  codeOf,
  importSecretKey,
  isCode,
  nextKeyId,
  rsaPublicKey,
  type Token,
  TokenError,
  type TokenKeyInfo,
} from "./pkcs11-token.js";
import { keysById, operatorCheck } from "./provider-shared.js";

const T = pkcs11js;
type Handle = Buffer;

/** How often sealing looks for keys another process added to the token; an unknown key id looks at once. */
const RELOAD_CHECK_MS = 1000;
const RETRY_AFTER_SECONDS = 1;

const OAEP = {
  mechanism: T.CKM_RSA_PKCS_OAEP,
  parameter: {
    type: T.CK_PARAMS_RSA_OAEP,
    hashAlg: T.CKM_SHA256,
    mgf: T.CKG_MGF1_SHA256,
    // CKZ_DATA_SPECIFIED (PKCS#11 2.40 §2.1.8) with no label: pkcs11js does not export the constant.
    source: 1,
  },
};
/** RSA-PSS, SHA-256, MGF1-SHA-256, salt 32 (RFC 8017 §8.1; JOSE PS256, RFC 7518 §3.5). */
const PSS = {
  mechanism: T.CKM_SHA256_RSA_PKCS_PSS,
  parameter: { type: T.CK_PARAMS_RSA_PSS, hashAlg: T.CKM_SHA256, mgf: T.CKG_MGF1_SHA256, saltLen: 32 },
};

export interface Pkcs11KeyProviderOptions {
  /** Deliveries admitted at once (threads + queue, as the local provider's pool); past it, 503 overloaded. */
  pool?: DeviceCryptoPoolSettings;
  /** The clock imported keys are dated by. */
  clock?: Clock;
}

export function createPkcs11KeyProvider(token: Token, options: Pkcs11KeyProviderOptions = {}): KeyProvider {
  const { pkcs11, session } = token;
  let keys: TokenKeyInfo[] = [];
  let byId = new Map<string, TokenKeyInfo>();
  const active = new Map<KeyType, TokenKeyInfo>();
  let secureDataKeys: SecureDataPublicKey[] = [];
  let accessTokenKeys: AccessTokenPublicKey[] = [];
  const clock = options.clock ?? systemClock;
  let lastCheck = 0;
  let signature = "";
  const handles = new Map<string, Handle>();
  // The card operations over this token's keys (card-operations.ts), and the helpers the rest of it shares.
  const finder = keysById(() => byId, refresh, "token");
  const { key } = finder;
  const card = cardOperations<TokenKeyInfo>({
    ...finder,
    activeKey,
    sealText,
    openText,
    fingerprintOf,
    cvvGenerator: (cvk) => createCvvGeneratorOver(cvkCiphers(cvk.id)),
    cvvBatch: (cvk, inputs) => computeCvvBatchOver(cvkCiphers(cvk.id), inputs),
    pvvGenerator: (pvk) => createPvvGeneratorOver(ecb(pvk.id, T.CKM_DES3_ECB)),
    // CKM_DES3_ECB or CKM_AES_ECB by the key's algorithm.
    pinBlockCipher: (k) => {
      const family = familyOf(k.algorithm);
      return pinBlockCipherOver(ecb(k.id, family === "tdes" ? T.CKM_DES3_ECB : T.CKM_AES_ECB), family);
    },
  });
  const { panOf, cvvOf, openCheckedPin } = card;
  const capacity = options.pool ? options.pool.threads + options.pool.queue : 36;
  let admitted = 0;

  function load(): void {
    const next = token.readKeys();
    const nextSignature = next.map((k) => `${k.id}:${k.active}:${k.retiredAt ?? ""}`).join();
    if (nextSignature === signature) return;
    signature = nextSignature;
    keys = next;
    byId = new Map(keys.map((k) => [k.id, k]));
    active.clear();
    for (const k of keys) if (k.active) active.set(k.type, k);
    secureDataKeys = keys
      .filter((k) => k.type === "secure-data-wrap" || k.type === "secure-data-sign")
      .map((k) => publicKeyOf(k));
    accessTokenKeys = keys
      .filter((k) => k.type === "access-token-sign" && !k.retired && k.publicKey)
      .map((k) => ({
        kid: k.id,
        active: k.active,
        createdAt: k.createdAt,
        notAfter: k.notAfter ?? k.createdAt,
        jwk: { kty: "OKP", crv: "Ed25519", x: k.publicKey!, kid: k.id, use: "sig", alg: "EdDSA" },
      }));
  }
  load();

  /** The last look at the token failed (it went away, the session was closed): no key is usable until one works. */
  let unreachable: string | undefined;

  function refresh(now: boolean): void {
    const t = performance.now();
    if (!now && t - lastCheck < RELOAD_CHECK_MS) return;
    lastCheck = t;
    try {
      load();
      unreachable = undefined;
    } catch (error) {
      unreachable = codeOf(error);
    }
  }

  function publicKeyOf(k: TokenKeyInfo): SecureDataPublicKey {
    const publicKey = rsaPublicKey(token, handleOf(k.id));
    const { n, e, kty } = publicKey.export({ format: "jwk" });
    const wrap = k.type === "secure-data-wrap";
    const alg = wrap ? "RSA-OAEP-256" : "PS256";
    return {
      kid: k.id,
      use: wrap ? "wrap" : "sign",
      alg,
      active: k.active,
      createdAt: k.createdAt,
      notAfter: k.notAfter ?? k.createdAt,
      jwk: { kty: kty!, n: n!, e: e!, kid: k.id, use: wrap ? "enc" : "sig", alg },
      pem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    };
  }

  /**
   * The key object of a label (a key id, or a CVK's half): a session copy of the token object (C_CopyObject,
   * CKA_TOKEN false; still sensitive and never extractable, gone when the provider's sessions close), because
   * SoftHSM re-reads a token object from its file on every use (≈ 560 µs per DES block against ≈ 200 µs for a
   * session object, BENCHMARKS.md). A token that refuses the copy is used through the token object itself.
   */
  function handleOf(label: string): Handle {
    let h = handles.get(label);
    if (!h) {
      const stored = token.object(label);
      if (!stored) throw new AppError("key_unavailable", `Key ${label} has no object in the token.`);
      try {
        h = pkcs11.C_CopyObject(session, stored, [{ type: T.CKA_TOKEN, value: false }]);
      } catch {
        h = stored;
      }
      handles.set(label, h);
    }
    return h;
  }

  function activeKey(type: KeyType): TokenKeyInfo {
    refresh(false);
    // /readyz asks activeKeyId of every type: a token that stopped answering makes the service not ready.
    if (unreachable) throw new AppError("key_unavailable", `The token does not answer (${unreachable}).`);
    const k = active.get(type);
    if (!k) throw new AppError("key_unavailable", `The token has no active ${type} key.`);
    return k;
  }

  /** ECB in the token, one C_EncryptInit/C_DecryptInit + one call per use (synchronous: they never interleave). */
  function ecb(label: string, mechanism: number): BlockCipher {
    const h = handleOf(label);
    return {
      encrypt(data) {
        pkcs11.C_EncryptInit(session, { mechanism }, h);
        return pkcs11.C_Encrypt(session, Buffer.from(data), Buffer.alloc(data.length));
      },
      decrypt(data) {
        pkcs11.C_DecryptInit(session, { mechanism }, h);
        return pkcs11.C_Decrypt(session, Buffer.from(data), Buffer.alloc(data.length));
      },
    };
  }

  const cvkCiphers = (id: string) => ({
    a: ecb(id + CVK_HALF_SUFFIX, T.CKM_DES3_ECB),
    ab: ecb(id, T.CKM_DES3_ECB),
  });

  function fingerprintOf(pan: string): string {
    const k = activeKey("fingerprint");
    pkcs11.C_SignInit(session, { mechanism: T.CKM_SHA256_HMAC }, handleOf(k.id));
    return `${k.id}:${pkcs11.C_Sign(session, Buffer.from(pan), Buffer.alloc(32)).toString("base64url")}`;
  }

  const gcm = (nonce: Buffer, aad: Buffer) => ({
    mechanism: T.CKM_AES_GCM,
    parameter: { type: T.CK_PARAMS_AES_GCM, iv: nonce, aad, ivBits: 96, tagBits: 128 },
  });

  /** AES-256-GCM in the token: envelope "v1:<key id>:<nonce>:<ciphertext‖tag>", the AAD binding it to its row. */
  function sealText(type: KeyType, text: string, aad: Buffer): string {
    const k = activeKey(type);
    const nonce = randomBytes(12);
    const clear = Buffer.from(text, "utf8");
    try {
      pkcs11.C_EncryptInit(session, gcm(nonce, aad), handleOf(k.id));
      const ct = pkcs11.C_Encrypt(session, clear, Buffer.alloc(clear.length + 16));
      return [ENVELOPE_VERSION, k.id, nonce.toString("base64url"), ct.toString("base64url")].join(":");
    } finally {
      clear.fill(0);
    }
  }

  function openText(sealed: string, type: KeyType, aad: Buffer, what: string): string {
    const [version, kid, nonce, ct] = sealed.split(":");
    if (version !== ENVELOPE_VERSION || !kid || !nonce || !ct) {
      throw new AppError("key_unavailable", `A sealed ${what} is damaged (unknown envelope).`);
    }
    const k = key(kid, type);
    const raw = Buffer.from(ct, "base64url");
    let clear: Buffer;
    try {
      pkcs11.C_DecryptInit(session, gcm(Buffer.from(nonce, "base64url"), aad), handleOf(k.id));
      clear = pkcs11.C_Decrypt(session, raw, Buffer.alloc(raw.length));
    } catch (error) {
      throw new AppError(
        "key_unavailable",
        `A sealed ${what} does not open under key ${kid}: the ciphertext is damaged or the key is wrong (${codeOf(error)}).`,
      );
    }
    try {
      return clear.toString("utf8");
    } finally {
      clear.fill(0);
    }
  }

  /** Runs an asynchronous operation on a session of its own (RSA: milliseconds, off the event loop). */
  async function onSession<R>(run: (s: Handle) => Promise<R>): Promise<R> {
    const s = await token.acquire();
    try {
      return await run(s);
    } finally {
      token.release(s);
    }
  }

  function signPss(keyId: string, data: Buffer): Promise<Buffer> {
    return onSession(async (s) => {
      pkcs11.C_SignInit(s, PSS, handleOf(keyId));
      return pkcs11.C_SignAsync(s, data, Buffer.alloc(512));
    });
  }

  function wrapKeysFor(now: Date, keyId: string | undefined): TokenKeyInfo[] {
    refresh(false);
    const valid = (k: TokenKeyInfo) =>
      k.type === "secure-data-wrap" && (k.active || (k.notAfter ?? "") > now.toISOString());
    if (keyId !== undefined) {
      if (!byId.has(keyId)) refresh(true);
      const k = byId.get(keyId);
      if (!k || !valid(k)) {
        throw new AppError(
          "validation_failed",
          "keyId does not name a current wrap key; see GET /v1/secure-data/keys.",
          { fields: { keyId: ["must name a current secure-data-wrap key"] } },
        );
      }
      return [k];
    }
    return keys.filter(valid).sort((a, b) => Number(b.active) - Number(a.active) || b.version - a.version);
  }

  /** Whether the token unwraps RSA-OAEP with SHA-256 (SoftHSM 2.6 answers CKR_ARGUMENTS_BAD: SHA-1 only). */
  let oaepSha256InToken = true;
  const sessionAesKey: pkcs11js.Template = [
    { type: T.CKA_CLASS, value: T.CKO_SECRET_KEY },
    { type: T.CKA_KEY_TYPE, value: T.CKK_AES },
    { type: T.CKA_TOKEN, value: false },
    { type: T.CKA_SENSITIVE, value: true },
    { type: T.CKA_EXTRACTABLE, value: false },
    { type: T.CKA_ENCRYPT, value: true },
  ];

  /**
   * The device's session key into a session AES object (never extractable) of 32 bytes: C_UnwrapKey with
   * CKM_RSA_PKCS_OAEP (SHA-256). A token that lacks OAEP with SHA-256 (SoftHSM 2.6) gets the raw RSA private
   * operation (CKM_RSA_X_509) in the token and the OAEP decoding here (RFC 8017 §7.1.2, oaep-decode.ts); the
   * 32 bytes then go straight into a session object and are wiped. A real HSM takes the first path.
   */
  async function unwrapSessionKey(wrappedKey: Buffer, candidates: TokenKeyInfo[]) {
    const bits = wrappedKey.length * 8;
    for (const k of candidates) {
      if (!k.algorithm.startsWith(`rsa-${bits}-`)) continue;
      const handle = await onSession(async (s) => {
        if (oaepSha256InToken) {
          try {
            return await pkcs11.C_UnwrapKeyAsync(s, OAEP, handleOf(k.id), wrappedKey, sessionAesKey);
          } catch (error) {
            if (!isCode(error, "CKR_ARGUMENTS_BAD") && !isCode(error, "CKR_MECHANISM_PARAM_INVALID"))
              return undefined;
            oaepSha256InToken = false;
          }
        }
        let encoded: Buffer;
        try {
          pkcs11.C_DecryptInit(s, { mechanism: T.CKM_RSA_X_509 }, handleOf(k.id));
          encoded = await pkcs11.C_DecryptAsync(s, wrappedKey, Buffer.alloc(wrappedKey.length));
        } catch {
          return undefined;
        }
        const key = oaepDecodeSha256(encoded, wrappedKey.length);
        encoded.fill(0);
        if (!key) return undefined;
        try {
          return pkcs11.C_CreateObject(session, [...sessionAesKey, { type: T.CKA_VALUE, value: key }]);
        } catch {
          return undefined;
        } finally {
          key.fill(0);
        }
      });
      if (!handle) continue;
      const [len] = pkcs11.C_GetAttributeValue(session, handle, [{ type: T.CKA_VALUE_LEN }]);
      if (len!.value!.readUInt32LE(0) === 32) return { handle, wrapKeyId: k.id };
      pkcs11.C_DestroyObject(session, handle);
    }
    throw sessionKeyInvalid();
  }

  /**
   * A ceremony's key: checked by key-import.ts (type, length, parity), created in the token as the next version
   * of its type (never active), its check value computed there and compared before it is recorded; a refusal
   * destroys the object. The bytes given are wiped.
   */
  async function importKey(request: KeyImport): Promise<KeyInfo> {
    const kcv = expectedKcv(request.kcv);
    const { algorithm, material } = importedKey(request);
    try {
      refresh(true);
      const added = importSecretKey(
        token,
        {
          id: nextKeyId(token, request.type),
          type: request.type,
          material,
          origin: request.origin,
          algorithm,
        },
        clock,
        (actual) => assertKcv(actual, kcv),
      );
      refresh(true);
      return infoOf(added);
    } catch (error) {
      // The token refused (its message names the key id and the CKR_ code only): nothing was stored.
      if (error instanceof TokenError) throw new AppError("key_unavailable", error.message);
      throw error;
    } finally {
      material.fill(0);
    }
  }

  /** Get Card Data's steps for one device request (DeviceSession in key-provider.ts). */
  function deviceSession(request: DeviceRequest): DeviceSession {
    if (admitted >= capacity) {
      throw new OverloadedError(
        `Get Card Data is at capacity; nothing was done. Retry in ${RETRY_AFTER_SECONDS} s.`,
        RETRY_AFTER_SECONDS,
      );
    }
    admitted++;
    let opened:
      | ({ replayId: string } & (
          | { sessionKey: Handle; wrapKeyId: string }
          | { device: Record<string, unknown> }
        ))
      | undefined;
    let closed = false;
    const contents = new WeakMap<
      SealedCardData,
      { iv: Buffer; encryptedPayload: Buffer } | { payload: Buffer }
    >();
    const payloads: Buffer[] = [];
    const destroy = (h: Handle) => {
      try {
        pkcs11.C_DestroyObject(session, h);
      } catch {
        // Gone already.
      }
    };

    return {
      async open() {
        if ("deviceKey" in request) {
          const { jwk, replayId } = await deviceKeyOf(request.deviceKey);
          opened = { device: jwk as Record<string, unknown>, replayId };
          return;
        }
        const { handle, wrapKeyId } = await unwrapSessionKey(
          request.wrappedKey,
          wrapKeysFor(request.now, request.keyId),
        );
        if (closed) {
          destroy(handle);
          return;
        }
        // The same digest as the local provider's, computed over the key inside the token (C_DigestKey).
        pkcs11.C_DigestInit(session, { mechanism: T.CKM_SHA256 });
        pkcs11.C_DigestUpdate(session, Buffer.from("cardvault:secure-data:session-key:"));
        pkcs11.C_DigestKey(session, handle);
        const replayId = pkcs11.C_DigestFinal(session, Buffer.alloc(32)).toString("base64url");
        opened = { sessionKey: handle, wrapKeyId, replayId };
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
          pkcs11.C_EncryptInit(session, { mechanism: T.CKM_AES_CBC_PAD, parameter: iv }, opened.sessionKey);
          const encryptedPayload = pkcs11.C_Encrypt(session, payload, Buffer.alloc(payload.length + 16));
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
          // A compact JWS (RFC 7515 §7.1) signed PS256 in the token, then JWE ECDH-ES + A256GCM to the device.
          const header = Buffer.from(JSON.stringify({ alg: "PS256", kid: signingKeyId })).toString(
            "base64url",
          );
          const input = Buffer.from(`${header}.${content.payload.toString("base64url")}`);
          try {
            const signature = await signPss(signingKeyId, input);
            const jws = Buffer.concat([input, Buffer.from(`.${signature.toString("base64url")}`)]);
            const jwe = await new CompactEncrypt(jws)
              .setProtectedHeader({ alg: "ECDH-ES", enc: "A256GCM", cty: "JOSE" })
              .encrypt(await importJWK(opened.device, "ECDH-ES"));
            jws.fill(0);
            return { kind: "jwe", jwe, signingKeyId };
          } finally {
            input.fill(0);
          }
        }
        if (!("sessionKey" in opened)) throw new Error("An AES-CBC payload needs a session key.");
        const { iv, encryptedPayload } = content;
        const signature = await signPss(signingKeyId, Buffer.concat([encryptedPayload, iv]));
        return { kind: "rsa", iv, encryptedPayload, signature, wrapKeyId: opened.wrapKeyId, signingKeyId };
      },

      close() {
        if (closed) return;
        closed = true;
        if (opened && "sessionKey" in opened) destroy(opened.sessionKey);
        for (const payload of payloads) payload.fill(0);
        admitted--;
      },
    };
  }

  function payloadOf(card: SealedPinCard, fields: readonly CardDataField[]): Buffer {
    const pan = panOf(card);
    return cardDataPayload(fields, {
      pan: () => pan,
      cvv: () => cvvOf(card, pan),
      expiry: card.expiry,
      pin: () => openCheckedPin(pan, card.pin),
    });
  }

  return {
    activeKeyId: (type) => activeKey(type).id,
    listKeys: (): KeyInfo[] => {
      refresh(false);
      return keys.map(infoOf);
    },

    ...card.operations,

    secureDataKeys: () => {
      refresh(false);
      return secureDataKeys.map((k) => ({ ...k, jwk: { ...k.jwk } }));
    },

    /**
     * A compact JWS (RFC 7515 §7.1) whose signature is CKM_EDDSA (Ed25519, RFC 8032 pure) over the signing
     * input, in the token: the same bytes jose's SignJWT would sign, so the local provider's verifiers apply.
     */
    async signAccessToken(claims) {
      const signer = activeKey("access-token-sign");
      const header = { alg: "EdDSA", typ: "at+jwt", kid: signer.id };
      const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
      pkcs11.C_SignInit(session, { mechanism: CKM_EDDSA }, handleOf(signer.id));
      const signature = pkcs11.C_Sign(session, Buffer.from(input), Buffer.alloc(64));
      return `${input}.${signature.toString("base64url")}`;
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
        throw new AppError("validation_failed", `${kbpkId} names no kbpk key in the token.`, {
          fields: { kbpkId: ["must name a kbpk (key block protection key)"] },
        });
      }
      const family = familyOf(kbpk.algorithm);
      const handle = handleOf(kbpk.id);
      let unwrapped: ReturnType<typeof unwrapKeyBlock>;
      try {
        unwrapped = unwrapKeyBlock(block, {
          algorithm: family,
          length: keyLengthOf(kbpk.algorithm),
          // The KBPK computes CMACs only, in the token (NIST SP 800-38B; TR-31:2018 §5.3.2 derivation).
          cmac: (data) => {
            pkcs11.C_SignInit(
              session,
              { mechanism: family === "tdes" ? T.CKM_DES3_CMAC : T.CKM_AES_CMAC },
              handle,
            );
            return pkcs11.C_Sign(session, data, Buffer.alloc(family === "tdes" ? 8 : 16));
          },
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
      const cvk = key(keyId, "cvk");
      return operatorCheck(() => createCvvGeneratorOver(cvkCiphers(cvk.id))({ pan, expiry, serviceCode }));
    },
    async computePvv({ keyId, pvki, pan, pin }) {
      const pvk = key(keyId, "pvk");
      return operatorCheck(() => createPvvGeneratorOver(ecb(pvk.id, T.CKM_DES3_ECB))({ pvki, pan, pin }));
    },

    async close() {
      token.close();
    },
  };
}

/** Bytes of a symmetric key by its listed algorithm: tdes-2key 16, tdes-3key 24, aes-N N/8. */
function keyLengthOf(algorithm: string): number {
  if (algorithm.startsWith("tdes")) return algorithm === "tdes-3key" ? 24 : 16;
  return Number(algorithm.slice(4)) / 8;
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64url");

/** What listKeys shows of a key: KeyInfo, without the token's extras. */
function infoOf({ publicKey: _publicKey, ...info }: TokenKeyInfo): KeyInfo {
  return info;
}
