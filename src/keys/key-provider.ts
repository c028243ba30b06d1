// The one interface through which everything touches key material (our "HSM"). Callers pass a card as it is
// stored (its sealed PAN with the binding it was sealed under, and its key ids) and get results back: keys,
// clear PANs and the clear PIN of an enciphered PIN block never leave the provider. A clear PAN or PIN goes
// in only where it comes from outside (a PIN the cardholder sets, a PAN presented for a look-up). A PKCS#11
// module implements this same interface (there the PAN is opened inside the token); the local keystore is
// the default. Every provider runs the contract suite in key-provider.contract.ts. Get Card Data is a session
// in steps (DeviceSession), so that its costly private-key work stays out of the caller's store transaction.
import { PVV_ONLY_PIN } from "../domain/card.js";
import { AppError } from "../domain/errors.js";

export { PVV_ONLY_PIN };

export const keyTypes = [
  "cvk",
  "pvk",
  "pin-storage",
  "pan-data",
  "fingerprint",
  "pek-tdes",
  "pek-aes",
  "webhook-secret",
  "secure-data-wrap",
  "secure-data-sign",
] as const;
export type KeyType = (typeof keyTypes)[number];

export interface KeyInfo {
  id: string;
  type: KeyType;
  version: number;
  algorithm: string;
  /** Key check value, so an operator can compare keys without seeing them. */
  kcv: string;
  createdAt: string;
  active: boolean;
  /** Asymmetric keys only: the published public half must not be relied on after this instant. */
  notAfter?: string;
  /** No stored ciphertext names this key any more (re-encrypted under a newer version); it never seals. */
  retired?: boolean;
  retiredAt?: string;
}

/** The public half of a Get Card Data key, as published to devices. */
export interface SecureDataPublicKey {
  kid: string;
  /** wrap: devices encrypt their AES session key to it; sign: devices verify answers with it. */
  use: "wrap" | "sign";
  /** JOSE name: RSA-OAEP-256 (wrap) or PS256 (sign, RSA-PSS SHA-256, MGF1-SHA-256, salt 32). */
  alg: "RSA-OAEP-256" | "PS256";
  active: boolean;
  createdAt: string;
  notAfter: string;
  jwk: { kty: string; n: string; e: string; kid: string; use: "enc" | "sig"; alg: string };
  pem: string;
}

/**
 * What a device asked Get Card Data with: an AES-256 session key wrapped (RSA-OAEP-SHA256) under the active wrap
 * key, a retired one not yet past its not-after at `now`, or only `keyId` when given; or its ephemeral P-256
 * public key (JWK).
 */
export type DeviceRequest =
  | { wrappedKey: Buffer; keyId?: string; now: Date }
  | { deviceKey: Record<string, unknown> };

/** A card's payload sealed to a device (the ciphertext, or the payload awaiting its JWS, stays inside). */
export interface SealedCardData {
  method: "rsa-oaep+aes-cbc" | "ecdh-es+a256gcm";
  /** RSA path: the wrap key the session key was unwrapped with. */
  wrapKeyId?: string;
  /** The signing key the answer will be signed with. */
  signingKeyId: string;
}

/** What a device gets back, signed. */
export type DeviceAnswer =
  | {
      kind: "rsa";
      /** AES-256-CBC under the session key. */
      iv: Buffer;
      encryptedPayload: Buffer;
      /** RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) over encryptedPayload ‖ iv. */
      signature: Buffer;
      wrapKeyId: string;
      signingKeyId: string;
    }
  /** A compact JWS (PS256) of the payload inside a compact JWE (ECDH-ES + A256GCM) to the device key. */
  | { kind: "jwe"; jwe: string; signingKeyId: string };

/**
 * One Get Card Data delivery inside the provider, in the order a service runs it: open (the costly private-key
 * work, before the store transaction), seal (inside it, on the card as read there; again if it runs again),
 * sign (the costly signature, after it commits), and close, always, whatever happened. The session key (or
 * device key) and the clear payload never leave it: the handle is all a caller holds.
 */
export interface DeviceSession {
  /**
   * Unwraps the session key (RSA-OAEP-SHA256: the first current wrap key that opens it into 32 bytes) or checks
   * the device key. A key that does not unwrap is session_key_invalid, a keyId that names no current wrap key
   * validation_failed, a device key that is not public P-256 device_key_invalid.
   */
  open(): Promise<void>;
  /** Once open: a digest of the session key, or the device key's RFC 7638 thumbprint. Equal keys, equal ids. */
  readonly replayId: string;
  /** The card's `fields` as the card-data.ts JSON, encrypted under the session key, or kept for its JWS. */
  seal(card: SealedPinCard, fields: readonly CardDataField[]): Promise<SealedCardData>;
  /** The answer for a payload this session sealed, signed with the active signing key of the seal. */
  sign(sealed: SealedCardData): Promise<DeviceAnswer>;
  /** Wipes the session key and the payloads and gives the provider its capacity back; idempotent. */
  close(): void;
}

/**
 * A card as the provider takes it: the PAN sealed (AES-256-GCM, its key id in the envelope) with the binding
 * it was sealed under, and what its CVV is derived from. A binding that is not the one the PAN was sealed
 * under does not open it: a row copied to another tenant or card is useless.
 */
export interface SealedCard {
  tenantId: string;
  cardId: string;
  panSealed: string;
  expiry: string;
  cvkId: string;
  serviceCode: string;
}

export interface StoredPin {
  pvkId: string;
  pvki: number;
  pvv: string;
  /** The sealed ISO 9564 format-4 PIN block. */
  pinSealed: string;
}

/** A card with its stored PIN, for the PIN operations. */
export interface SealedPinCard extends SealedCard {
  pin: StoredPin;
}

/** A new card's PAN, drawn inside the provider from the tenant's BIN: sealed, fingerprinted and masked. */
export interface IssuedPan {
  panSealed: string;
  fingerprint: string;
  first6: string;
  last4: string;
}

/** What Get Card Data may deliver; the payload carries exactly the fields asked for. */
export type CardDataField = "pan" | "cvv" | "expiry" | "pin";

export type PinBlockAttempt = { format: 0 | 1 | 3 | 4; pinBlock: string; keyId?: string };

/**
 * The key types a PIN block of each format may be enciphered under when it comes from outside: verification
 * (`verifyPinBlock`) and import (`importPin`) both ask this one table. A zone PIN key type (`zpk`, from the key
 * ceremonies) joins here as one more entry in each list.
 */
export const pinBlockKeyTypes: Record<PinBlockAttempt["format"], readonly KeyType[]> = {
  0: ["pek-tdes"],
  1: ["pek-tdes"],
  3: ["pek-tdes"],
  4: ["pek-aes"],
};

export const pinNotRetrievable = () =>
  new AppError(
    "pin_not_retrievable",
    "This card's PIN was imported as a PVV only: it can be verified but not read. Set a new PIN to make it retrievable.",
  );

/** An enciphered PIN block brought over from another processor, under a key of pinBlockKeyTypes. */
export interface ImportedPinBlock {
  format: PinBlockAttempt["format"];
  pinBlock: string;
  keyId: string;
}

/** The PVV an imported PIN is stored with: the given one is checked against the block, else it is computed. */
export interface ImportedPvv {
  pvkId: string;
  pvki: number;
  pvv?: string;
}

/**
 * verifyPinBlock: a well-formed block (hex, the format's size) under a usable key deciphered to something that
 * is not a format-N PIN block. Unlike a wrong keyId or a block of the wrong size, this depends on the key, the
 * PAN and the PIN, so a caller who could tell it from a wrong PIN would have an oracle: the PIN service counts
 * it as a wrong try. Still a validation_failed AppError, so anywhere it is not caught it is a 400, never a 500.
 */
export class PinBlockUndecodableError extends AppError {
  constructor(format: number) {
    super("validation_failed", `The PIN block does not decode as format ${format}.`, {
      fields: { pinBlock: ["does not decode under the given key and format"] },
    });
    this.name = "PinBlockUndecodableError";
  }
}

export interface KeyProvider {
  activeKeyId(type: KeyType): string;
  listKeys(): KeyInfo[];

  /** Draws a Luhn-valid PAN of `length` digits under `bin` and seals it to `binding`. */
  issuePan(request: {
    bin: string;
    length: number;
    binding: { tenantId: string; cardId: string };
  }): Promise<IssuedPan>;
  /** Seals a PAN that comes from outside (a card brought over from another processor). */
  sealPan(pan: string, binding: { tenantId: string; cardId: string }): Promise<string>;
  /** Keyed fingerprint for uniqueness and look-ups of a presented PAN; never hashed without a key. */
  panFingerprint(pan: string): Promise<string>;

  deriveCvv(card: SealedCard): Promise<string>;
  /** Many CVVs at once (the rotation scheduler's path); results in input order. */
  deriveCvvBatch(cards: readonly SealedCard[]): Promise<string[]>;
  /** Constant-time comparison of a presented CVV with the derived one. */
  verifyCvv(card: SealedCard, presented: string): Promise<boolean>;

  /** Seals a PIN as an enciphered format-4 block and computes its PVV under the active PVK. */
  sealPin(card: SealedCard, pin: string): Promise<StoredPin>;
  /** A random PIN of `length` digits, sealed like sealPin: a new card's PIN, which no one outside saw. */
  sealRandomPin(card: SealedCard, length: number): Promise<StoredPin>;
  openPin(card: SealedPinCard): Promise<string>;
  verifyPin(card: SealedPinCard, presented: string): Promise<boolean>;
  /**
   * Deciphers a PIN block under a PIN encryption key and verifies it; the clear PIN stays inside. A keyId that
   * is not a PEK of the format's type, or a block that is not hex of the format's size, is a validation_failed
   * AppError; a block that deciphers to no valid format-N block is a PinBlockUndecodableError.
   */
  verifyPinBlock(card: SealedPinCard, block: PinBlockAttempt): Promise<boolean>;
  /**
   * Card import: translates an enciphered PIN block from another processor into the storage form (format 4
   * under the active pin-storage key) with its PVV under `pvv.pvkId`; the clear PIN stays inside. A keyId of a
   * wrong type, a malformed block, a block that does not decode, or a given PVV that does not match the block's
   * PIN is a validation_failed AppError (naming fields, never the block or the PIN).
   */
  importPin(card: SealedCard, block: ImportedPinBlock, pvv: ImportedPvv): Promise<StoredPin>;

  /**
   * Key rotation: the PAN and PIN block sealed again under the active pan-data and pin-storage keys (each
   * unchanged if already under it; the PIN block is checked against its PVV first; the PVV is untouched).
   */
  reseal(card: SealedPinCard): Promise<{ panSealed: string; pinSealed: string }>;

  /** Webhook signing secrets at rest: AES-256-GCM, bound to tenant + endpoint id like a sealed PAN. */
  sealWebhookSecret(secret: string, binding: { tenantId: string; endpointId: string }): Promise<string>;
  openWebhookSecret(sealed: string, binding: { tenantId: string; endpointId: string }): Promise<string>;

  /** Get Card Data: the public halves of every wrap and sign key version. */
  secureDataKeys(): SecureDataPublicKey[];
  /**
   * Get Card Data: a session for one device request (see DeviceSession). Its private-key work is the costly
   * part of the request, so a provider bounds how many it serves at once: past its capacity it refuses at
   * once, before any work, with an OverloadedError (503 `overloaded`, Retry-After).
   */
  deviceSession(request: DeviceRequest): DeviceSession;

  /** Stops what the provider started (worker threads, a token's session); in-flight work completes first. */
  close(): Promise<void>;
}
