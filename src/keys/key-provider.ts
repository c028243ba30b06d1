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
}
