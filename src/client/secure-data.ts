// The device side of Get Card Data, on WebCrypto only (browsers, Node ≥ 20, React Native with a WebCrypto
// polyfill): make a fresh AES-256 session key, wrap it with RSA-OAEP-SHA256 under cardvault's wrap key, and
// open the answer — verifying the RSA-PSS signature over encryptedPayload ‖ iv BEFORE decrypting anything.
// The session key is imported non-extractable and its raw bytes are wiped once wrapped. The JWE path (an
// ephemeral ECDH P-256 key instead of a wrapped key) uses jose, itself WebCrypto-based.
import { compactDecrypt, compactVerify } from "jose";

/** WebCrypto's CryptoKey, named without DOM or Node type imports so the module stays platform-neutral. */
export type WebCryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

/** What the payload holds once opened. PIN is present only when the card program enables it. */
export interface CardData {
  PAN: string;
  CVV: string;
  expiryDate: string;
  PIN?: string;
}

/** What a reveal session's payload holds once opened: exactly the fields the session was minted with. */
export type RevealedData = Partial<CardData>;

/** A public key as GET /v1/secure-data/keys publishes it (the JWK part is what the client needs). */
export interface PublishedKey {
  kid: string;
  use: "wrap" | "sign";
  jwk: { kty: string; n: string; e: string; kid?: string; alg?: string; use?: string };
  notAfter?: string;
}

/** The answer of Get Card Data in the Thredd / Payblr / native RSA form; all fields base64. */
export interface EncryptedCardData {
  iv: string;
  encryptedPayload: string;
  signatureOfPayloadAndIv: string;
}

export class SecureDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecureDataError";
  }
}

const PSS = { name: "RSA-PSS", saltLength: 32 } as const;

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text: string, what: string): Uint8Array<ArrayBuffer> {
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    throw new SecureDataError(`${what} is not base64.`);
  }
}

function publicJwk(key: PublishedKey["jwk"]) {
  return { kty: key.kty, n: key.n, e: key.e, ext: true };
}

/** Imports cardvault's wrap public key (RSA-OAEP, SHA-256). Check `notAfter` before relying on a cached key. */
export function importWrapKey(key: PublishedKey["jwk"]): Promise<WebCryptoKey> {
  return crypto.subtle.importKey("jwk", publicJwk(key), { name: "RSA-OAEP", hash: "SHA-256" }, false, [
    "encrypt",
  ]);
}

/** Imports cardvault's signing public key (RSA-PSS, SHA-256); used only to verify answers. */
export function importSigningKey(key: PublishedKey["jwk"]): Promise<WebCryptoKey> {
  return crypto.subtle.importKey("jwk", publicJwk(key), { name: "RSA-PSS", hash: "SHA-256" }, false, [
    "verify",
  ]);
}

/**
 * A fresh AES-256 session key for ONE request: `key` (base64, RSA-OAEP-SHA256-wrapped) goes to the backend;
 * `sessionKey` (non-extractable) stays on the device to open the answer. Never reuse either.
 */
export async function createSessionKey(
  wrapKey: WebCryptoKey,
): Promise<{ key: string; sessionKey: WebCryptoKey }> {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  try {
    const wrapped = new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, wrapKey, raw));
    const sessionKey = await crypto.subtle.importKey("raw", raw, { name: "AES-CBC" }, false, ["decrypt"]);
    return { key: toBase64(wrapped), sessionKey };
  } finally {
    raw.fill(0);
  }
}

/** The request body the Thredd and Payblr dialects expect, with their optional parameters spelled out. */
export function threddCardDataRequest(key: string) {
  return { key, paddingMode: "PKCS2_2", encryptionKeyLength: "Rsa4096", hashingAlgorithm: "Sha256" } as const;
}

/** Verifies the signature over encryptedPayload ‖ iv, then decrypts. Throws SecureDataError on any doubt. */
export async function openCardData(
  answer: EncryptedCardData,
  sessionKey: WebCryptoKey,
  signingKey: WebCryptoKey,
): Promise<CardData> {
  return parseCardData(await openPayload(answer, sessionKey, signingKey));
}

/**
 * The reveal page's answer, opened as openCardData opens Get Card Data's, holding only the session's fields
 * (at least one of PAN, CVV, expiryDate, PIN; each a string).
 */
export async function openRevealedData(
  answer: EncryptedCardData,
  sessionKey: WebCryptoKey,
  signingKey: WebCryptoKey,
): Promise<RevealedData> {
  return parseRevealedData(await openPayload(answer, sessionKey, signingKey));
}

async function openPayload(
  answer: EncryptedCardData,
  sessionKey: WebCryptoKey,
  signingKey: WebCryptoKey,
): Promise<Uint8Array> {
  const iv = fromBase64(answer.iv, "iv");
  const ciphertext = fromBase64(answer.encryptedPayload, "encryptedPayload");
  const signature = fromBase64(answer.signatureOfPayloadAndIv, "signatureOfPayloadAndIv");
  if (iv.length !== 16) throw new SecureDataError("iv must be 16 bytes.");
  const signed = new Uint8Array(ciphertext.length + iv.length);
  signed.set(ciphertext, 0);
  signed.set(iv, ciphertext.length);
  if (!(await crypto.subtle.verify(PSS, signingKey, signature, signed))) {
    throw new SecureDataError(
      "The signature does not verify: the answer was altered or not made by cardvault.",
    );
  }
  let clear: ArrayBuffer;
  try {
    clear = await crypto.subtle.decrypt({ name: "AES-CBC", iv }, sessionKey, ciphertext);
  } catch {
    throw new SecureDataError("The payload does not decrypt under this session key.");
  }
  return new Uint8Array(clear);
}

/** An ephemeral ECDH P-256 key pair for ONE request: send `publicJwk` as `deviceKey`, keep `privateKey`. */
export async function createDeviceKey(): Promise<{
  publicJwk: { kty: "EC"; crv: "P-256"; x: string; y: string };
  privateKey: WebCryptoKey;
}> {
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return { publicJwk: { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y! }, privateKey: pair.privateKey };
}

/** Opens the native JWE answer: decrypt (ECDH-ES, A256GCM), then verify the inner JWS (PS256) and its kid. */
export async function openCardDataJwe(
  jwe: string,
  privateKey: WebCryptoKey,
  signingKey: WebCryptoKey,
  signingKeyId?: string,
): Promise<CardData> {
  let jws: string;
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, privateKey, {
      keyManagementAlgorithms: ["ECDH-ES"],
      contentEncryptionAlgorithms: ["A256GCM"],
    });
    if (protectedHeader.cty !== "JOSE") throw new Error("unexpected content type");
    jws = new TextDecoder().decode(plaintext);
  } catch {
    throw new SecureDataError("The JWE does not decrypt under this device key.");
  }
  try {
    const { payload, protectedHeader } = await compactVerify(jws, signingKey, { algorithms: ["PS256"] });
    if (signingKeyId !== undefined && protectedHeader.kid !== signingKeyId) throw new Error("another key");
    return parseCardData(payload);
  } catch (error) {
    if (error instanceof SecureDataError) throw error;
    throw new SecureDataError(
      "The signature does not verify: the answer was altered or not made by cardvault.",
    );
  }
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new SecureDataError("The payload is not JSON.");
  } finally {
    bytes.fill(0);
  }
}

function parseRevealedData(bytes: Uint8Array): RevealedData {
  const d = parseJson(bytes) as Record<string, unknown> | null;
  if (!d || typeof d !== "object" || Array.isArray(d))
    throw new SecureDataError("The payload is not an object.");
  const opened: RevealedData = {};
  for (const key of ["PAN", "CVV", "expiryDate", "PIN"] as const) {
    const value = d[key];
    if (value === undefined) continue;
    if (typeof value !== "string") throw new SecureDataError(`The payload's ${key} is not a string.`);
    opened[key] = value;
  }
  if (Object.keys(opened).length === 0) {
    throw new SecureDataError("The payload holds none of PAN, CVV, expiryDate or PIN.");
  }
  return opened;
}

function parseCardData(bytes: Uint8Array): CardData {
  const d = parseJson(bytes) as Partial<CardData> | null;
  if (!d || typeof d.PAN !== "string" || typeof d.CVV !== "string" || typeof d.expiryDate !== "string") {
    throw new SecureDataError("The payload lacks PAN, CVV or expiryDate.");
  }
  return {
    PAN: d.PAN,
    CVV: d.CVV,
    expiryDate: d.expiryDate,
    ...(typeof d.PIN === "string" ? { PIN: d.PIN } : {}),
  };
}
