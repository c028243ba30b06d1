// The card operations every key provider answers alike, written once over the provider's primitives: issue and
// seal a PAN, derive and verify a CVV, seal, open and verify a PIN, verify and import a PIN block, reseal a card
// under the active keys, seal and open a webhook secret. A provider differs only in its primitives: where its
// keys live, how it seals (AES-256-GCM in process, or on a PKCS#11 token), how it fingerprints a PAN, and the
// block ciphers and CVV/PVV generators over a key (node:crypto over keystore material, or C_Encrypt on the
// token). Invariant: a clear PAN or PIN exists only inside these functions and the primitives, for the operation
// at hand; every comparison of secrets is constant-time (equalSecrets).
import { randomInt } from "node:crypto";
import type { CvvInput } from "../crypto/cvv.js";
import { CryptoInputError } from "../crypto/errors.js";
import { generatePan } from "../crypto/pan.js";
import type { PinBlockCipher } from "../crypto/pin-block.js";
import type { PvvInput } from "../crypto/pvv.js";
import { AppError } from "../domain/errors.js";
import { memo } from "../lib/memo.js";
import {
  type ImportedPinBlock,
  type KeyInfo,
  type KeyProvider,
  type KeyType,
  type PinBlockAttempt,
  PinBlockUndecodableError,
  PVV_ONLY_PIN,
  pinNotRetrievable,
  type SealedCard,
  type StoredPin,
} from "./key-provider.js";
import {
  assertPinBlockShape,
  choosePinBlockKey,
  deriveCvvsByKey,
  equalSecrets,
  panAad,
  resealUnder,
  webhookSecretAad,
} from "./provider-shared.js";

/** The envelope version of a sealed PIN block ("v1:<key id>:<block>"), as of every sealed text. */
export const ENVELOPE_VERSION = "v1";

/** What a provider gives the card operations: its keys, and the primitives over them. */
export interface CardPrimitives<K extends KeyInfo> {
  /** The key of this id and type, or key_unavailable. */
  key(id: string, type: KeyType): K;
  /** The active key of a type, or key_unavailable. */
  activeKey(type: KeyType): K;
  /** The key of this id if the provider has it (refreshing its view for an id it does not know). */
  lookup(id: string): K | undefined;
  /** The provider's store, as a refusal names it ("keystore", "token"). */
  where: string;
  /** An authenticated envelope of `text` under the active key of `type`, bound to `aad`. */
  sealText(type: KeyType, text: string, aad: Buffer): string;
  /** Opens an envelope sealText made; key_unavailable (naming `what`) when it does not open. */
  openText(sealed: string, type: KeyType, aad: Buffer, what: string): string;
  /** The PAN's fingerprint under the active fingerprint key, named by it. */
  fingerprintOf(pan: string): string;
  cvvGenerator(cvk: K): (input: CvvInput) => string;
  cvvBatch(cvk: K, inputs: readonly CvvInput[]): string[];
  pvvGenerator(pvk: K): (input: PvvInput) => string;
  /** The PIN block cipher of a pin-storage, PEK or zpk key. */
  pinBlockCipher(k: K): PinBlockCipher;
}

type CardOperationNames =
  | "issuePan"
  | "sealPan"
  | "panFingerprint"
  | "deriveCvv"
  | "deriveCvvBatch"
  | "verifyCvv"
  | "sealPin"
  | "sealRandomPin"
  | "openPin"
  | "verifyPin"
  | "verifyPinBlock"
  | "importPin"
  | "reseal"
  | "sealWebhookSecret"
  | "openWebhookSecret";

export function cardOperations<K extends KeyInfo>(p: CardPrimitives<K>) {
  const { key, activeKey, sealText, openText, fingerprintOf } = p;
  // Built once per key id (keys never change under an id).
  const cvvGeneratorOf = memo((cvkId: string) => p.cvvGenerator(key(cvkId, "cvk")));
  const pvvGeneratorOf = memo((pvkId: string) => p.pvvGenerator(key(pvkId, "pvk")));
  // (A key passed in was found under its id, so the lookup finds it again.)
  const pinBlockCiphers = memo((id: string) => p.pinBlockCipher(p.lookup(id) as K));
  const pinBlockCipherOf = (k: K) => pinBlockCiphers(k.id);

  /** The one place a card's PAN is opened: under the key its envelope names, bound to its tenant and id. */
  function panOf(card: SealedCard): string {
    return openText(card.panSealed, "pan-data", panAad(card), "PAN");
  }

  function cvvOf(card: SealedCard, pan = panOf(card)): string {
    return cvvGeneratorOf(card.cvkId)({ pan, expiry: card.expiry, serviceCode: card.serviceCode });
  }

  function pvvOf(pvkId: string, pvki: number, pan: string, pin: string): string {
    return pvvGeneratorOf(pvkId)({ pvki, pan, pin });
  }

  /** A format-4 block sealed under the active pin-storage key, as upper-case hex. */
  function sealPinBlock(storage: K, pan: string, pin: string): string {
    return pinBlockCipherOf(storage).encipher({ format: 4, pin, pan }).toString("hex").toUpperCase();
  }

  function sealPinFor(pan: string, pin: string, pvkId: string | undefined): StoredPin {
    const storage = activeKey("pin-storage");
    const pvk = pvkId === undefined ? activeKey("pvk") : key(pvkId, "pvk");
    const pvki = 1;
    return {
      pvkId: pvk.id,
      pvki,
      pvv: pvvOf(pvk.id, pvki, pan, pin),
      pinSealed: [ENVELOPE_VERSION, storage.id, sealPinBlock(storage, pan, pin)].join(":"),
    };
  }

  function openStoredPin(pan: string, sealed: string): string {
    if (sealed === PVV_ONLY_PIN) throw pinNotRetrievable();
    const [version, kid, block] = sealed.split(":");
    if (version !== ENVELOPE_VERSION || !kid || !block) {
      throw new AppError("key_unavailable", "A stored PIN block is damaged (unknown envelope).");
    }
    try {
      return pinBlockCipherOf(key(kid, "pin-storage")).decipher({ format: 4, block, pan });
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError("key_unavailable", `A stored PIN block does not open under key ${kid}.`);
    }
  }

  /** The PIN block is not authenticated: a damaged block could decode to another PIN. Its PVV decides. */
  function openCheckedPin(pan: string, stored: StoredPin): string {
    const pin = openStoredPin(pan, stored.pinSealed);
    if (!equalSecrets(pvvOf(stored.pvkId, stored.pvki, pan, pin), stored.pvv)) {
      const kid = stored.pinSealed.split(":")[1];
      throw new AppError(
        "key_unavailable",
        `A stored PIN block does not open under key ${kid}: it does not match its PVV.`,
      );
    }
    return pin;
  }

  /** A PIN matches when its PVV matches and it equals the stored PIN in full (a PVV covers 4 digits only). */
  function pinMatches(pan: string, stored: StoredPin, presented: string): boolean {
    const pvvOk = equalSecrets(pvvOf(stored.pvkId, stored.pvki, pan, presented), stored.pvv);
    // Imported with its PVV only: the PVV is all there is to compare (as at the processor it came from).
    if (stored.pinSealed === PVV_ONLY_PIN) return pvvOk;
    const pinOk = equalSecrets(openStoredPin(pan, stored.pinSealed), presented);
    return pvvOk && pinOk;
  }

  /** The key a PIN block from outside is enciphered under (choosePinBlockKey). */
  function pinBlockKeyOf(format: PinBlockAttempt["format"], named?: { id: string; field: string }): K {
    return choosePinBlockKey(format, named, { activeKey, lookup: p.lookup, where: p.where });
  }

  /** A block presented or imported, deciphered under its key; one that decodes to no format-N block is refused. */
  function decipherPresented(k: K, format: PinBlockAttempt["format"], block: string, pan: string): string {
    try {
      return pinBlockCipherOf(k).decipher({ format, block, pan });
    } catch (error) {
      if (!(error instanceof CryptoInputError)) throw error;
      throw new PinBlockUndecodableError(format);
    }
  }

  const operations: Pick<KeyProvider, CardOperationNames> = {
    async issuePan({ bin, length, binding }) {
      const pan = generatePan(bin, length, () => randomInt(10));
      return {
        panSealed: sealText("pan-data", pan, panAad(binding)),
        fingerprint: fingerprintOf(pan),
        first6: pan.slice(0, 6),
        last4: pan.slice(-4),
      };
    },
    sealPan: async (pan, binding) => sealText("pan-data", pan, panAad(binding)),
    panFingerprint: async (pan) => fingerprintOf(pan),

    deriveCvv: async (card) => cvvOf(card),
    deriveCvvBatch: async (cards) =>
      deriveCvvsByKey(cards, panOf, (cvkId, inputs) => p.cvvBatch(key(cvkId, "cvk"), inputs)),
    verifyCvv: async (card, presented) => equalSecrets(cvvOf(card), presented),

    sealPin: async (card, pin, pvkId) => sealPinFor(panOf(card), pin, pvkId),
    async sealRandomPin(card, length, pvkId) {
      let pin = "";
      for (let i = 0; i < length; i++) pin += String(randomInt(10));
      return sealPinFor(panOf(card), pin, pvkId);
    },
    openPin: async (card) => openCheckedPin(panOf(card), card.pin),
    verifyPin: async (card, presented) => pinMatches(panOf(card), card.pin, presented),

    async verifyPinBlock(card, { format, pinBlock, keyId }) {
      const pek = pinBlockKeyOf(format, keyId ? { id: keyId, field: "keyId" } : undefined);
      assertPinBlockShape(format, pinBlock);
      const pan = panOf(card);
      return pinMatches(pan, card.pin, decipherPresented(pek, format, pinBlock, pan));
    },

    async importPin(card, block: ImportedPinBlock, pvv) {
      const zpk = pinBlockKeyOf(block.format, { id: block.keyId, field: "zpkId" });
      assertPinBlockShape(block.format, block.pinBlock);
      const pan = panOf(card);
      const pin = decipherPresented(zpk, block.format, block.pinBlock, pan);
      const computed = pvvOf(pvv.pvkId, pvv.pvki, pan, pin);
      if (pvv.pvv !== undefined && !equalSecrets(computed, pvv.pvv)) {
        throw new AppError("validation_failed", "The PIN block's PIN does not match the PVV given with it.", {
          fields: { pvv: ["does not match the PIN of the PIN block"] },
        });
      }
      const storage = activeKey("pin-storage");
      return {
        pvkId: pvv.pvkId,
        pvki: pvv.pvki,
        pvv: computed,
        pinSealed: [ENVELOPE_VERSION, storage.id, sealPinBlock(storage, pan, pin)].join(":"),
      };
    },

    async reseal(card) {
      const storage = activeKey("pin-storage");
      return resealUnder(
        card,
        { envelope: ENVELOPE_VERSION, panKeyId: activeKey("pan-data").id, pinKeyId: storage.id },
        {
          panOf,
          sealPan: (pan) => sealText("pan-data", pan, panAad(card)),
          resealPin: (pan) =>
            [ENVELOPE_VERSION, storage.id, sealPinBlock(storage, pan, openCheckedPin(pan, card.pin))].join(
              ":",
            ),
        },
      );
    },

    sealWebhookSecret: async (secret, binding) =>
      sealText("webhook-secret", secret, webhookSecretAad(binding)),
    openWebhookSecret: async (sealed, binding) =>
      openText(sealed, "webhook-secret", webhookSecretAad(binding), "webhook secret"),
  };

  return { operations, panOf, cvvOf, openCheckedPin };
}
