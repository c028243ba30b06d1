// The one interface through which everything touches key material (our "HSM"). Callers pass key ids and
// card data; keys never leave the provider, and a clear PIN from an enciphered PIN block never does either.
// A PKCS#11 or cloud HSM implements this same interface; the local keystore is the default.
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

/** What a device gets back for an RSA-wrapped session key: AES-256-CBC ciphertext, its IV and a signature. */
export interface DeviceEnvelope {
  iv: Buffer;
  encryptedPayload: Buffer;
  /** RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) over encryptedPayload ‖ iv. */
  signature: Buffer;
  wrapKeyId: string;
  signingKeyId: string;
  /** A digest of the session key (not the key): the same key presented twice has the same replayId. */
  replayId: string;
}

export interface CvvInput {
  cvkId: string;
  pan: string;
  expiry: string;
  serviceCode: string;
}

export interface StoredPin {
  pvkId: string;
  pvki: number;
  pvv: string;
  /** The sealed ISO 9564 format-4 PIN block. */
  pinSealed: string;
}

export interface KeyProvider {
  activeKeyId(type: KeyType): string;
  listKeys(): KeyInfo[];

  deriveCvv(input: CvvInput): Promise<string>;
  /** Many CVVs at once (the rotation scheduler's path); results in input order. */
  deriveCvvBatch(inputs: readonly CvvInput[]): Promise<string[]>;
  /** Constant-time comparison of a presented CVV with the derived one. */
  verifyCvv(input: CvvInput, presented: string): Promise<boolean>;

  sealPan(pan: string, binding: { tenantId: string; cardId: string }): Promise<string>;
  openPan(sealed: string, binding: { tenantId: string; cardId: string }): Promise<string>;
  /** Key rotation: the same PAN sealed again under the active pan-data key (unchanged if already under it). */
  resealPan(sealed: string, binding: { tenantId: string; cardId: string }): Promise<string>;
  /** Key rotation: the stored PIN block enciphered again under the active pin-storage key (checked against its PVV first; PVV untouched). */
  resealPin(pan: string, stored: StoredPin): Promise<string>;
  /** Webhook signing secrets at rest: AES-256-GCM, bound to tenant + endpoint id like a sealed PAN. */
  sealWebhookSecret(secret: string, binding: { tenantId: string; endpointId: string }): Promise<string>;
  openWebhookSecret(sealed: string, binding: { tenantId: string; endpointId: string }): Promise<string>;
  /** Keyed fingerprint for uniqueness and look-ups; the clear PAN is never hashed without a key. */
  panFingerprint(pan: string): Promise<string>;

  /** Seals a PIN as an enciphered format-4 block and computes its PVV under the active PVK. */
  sealPin(pan: string, pin: string): Promise<StoredPin>;
  openPin(pan: string, stored: StoredPin): Promise<string>;
  verifyPin(pan: string, stored: StoredPin, presented: string): Promise<boolean>;
  /** Deciphers a PIN block under a PIN encryption key and verifies it; the clear PIN stays inside. */
  verifyPinBlock(
    pan: string,
    stored: StoredPin,
    block: { format: 0 | 1 | 3 | 4; pinBlock: string; keyId?: string },
  ): Promise<boolean>;

  /** Get Card Data: the public halves of every wrap and sign key version. */
  secureDataKeys(): SecureDataPublicKey[];
  /**
   * Unwraps a device's AES-256 session key (RSA-OAEP-SHA256 under the active wrap key, or a retired one not
   * yet past its not-after, or only `keyId` when given), encrypts the payload under it with AES-256-CBC and
   * signs the result. The session key never leaves the provider.
   */
  sealForDevice(request: {
    wrappedKey: Buffer;
    payload: Buffer;
    now: Date;
    keyId?: string;
  }): Promise<DeviceEnvelope>;
  /**
   * The same payload for a device that sent an ephemeral P-256 public JWK: signed (JWS, PS256) and then
   * encrypted to the device key (compact JWE, ECDH-ES + A256GCM). replayId is the device key's thumbprint.
   */
  sealForDeviceJwe(request: {
    deviceKey: Record<string, unknown>;
    payload: Buffer;
  }): Promise<{ jwe: string; signingKeyId: string; replayId: string }>;
}
