// The local KeyProvider: keys from the keystore file, held in memory, used through node:crypto. Ciphers and
// generators are built once per key and reused, because CVV and PIN checks sit on the authorisation path.
// Every ciphertext names the key that made it, so keys can rotate while old ciphertexts stay readable.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { computeCvvBatch, createCvvGenerator } from "../crypto/cvv.js";
import { CryptoInputError } from "../crypto/errors.js";
import { decipherPinBlock, encipherPinBlock } from "../crypto/pin-block.js";
import { createPvvGenerator } from "../crypto/pvv.js";
import { AppError } from "../domain/errors.js";
import type { CvvInput, KeyInfo, KeyProvider, KeyType, StoredPin } from "./key-provider.js";
import type { ClearKey } from "./keystore-file.js";

const ENVELOPE_VERSION = "v1";

export function createLocalKeyProvider(keys: ClearKey[]): KeyProvider {
  const byId = new Map(keys.map((k) => [k.id, k]));
  const active = new Map<KeyType, ClearKey>();
  for (const k of keys) if (k.active) active.set(k.type, k);

  const cvvGenerators = new Map<string, ReturnType<typeof createCvvGenerator>>();
  const pvvGenerators = new Map<string, ReturnType<typeof createPvvGenerator>>();

  function key(id: string, type: KeyType): ClearKey {
    const k = byId.get(id);
    if (!k || k.type !== type) {
      throw new AppError("key_unavailable", `Key ${id} (${type}) is not in the keystore.`);
    }
    return k;
  }

  function activeKey(type: KeyType): ClearKey {
    const k = active.get(type);
    if (!k) throw new AppError("key_unavailable", `The keystore has no active ${type} key.`);
    return k;
  }

  function cvvOf(input: CvvInput): string {
    let generate = cvvGenerators.get(input.cvkId);
    if (!generate) {
      generate = createCvvGenerator(key(input.cvkId, "cvk").material);
      cvvGenerators.set(input.cvkId, generate);
    }
    return generate({ pan: input.pan, expiry: input.expiry, serviceCode: input.serviceCode });
  }

  function pvvOf(pvkId: string, pvki: number, pan: string, pin: string): string {
    let generate = pvvGenerators.get(pvkId);
    if (!generate) {
      generate = createPvvGenerator(key(pvkId, "pvk").material);
      pvvGenerators.set(pvkId, generate);
    }
    return generate({ pvki, pan, pin });
  }

  function openStoredPin(pan: string, sealed: string): string {
    const [version, kid, block] = sealed.split(":");
    if (version !== ENVELOPE_VERSION || !kid || !block) {
      throw new AppError("key_unavailable", "A stored PIN block is damaged (unknown envelope).");
    }
    try {
      return decipherPinBlock({ format: 4, block, pan, key: key(kid, "pin-storage").material });
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError("key_unavailable", `A stored PIN block does not open under key ${kid}.`);
    }
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
      return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString("utf8");
    } catch {
      throw new AppError(
        "key_unavailable",
        `A sealed ${what} does not open under key ${kid}: the ciphertext is damaged or the key is wrong.`,
      );
    }
  }

  /** A PIN matches when its PVV matches and it equals the stored PIN in full (a PVV covers 4 digits only). */
  function pinMatches(pan: string, stored: StoredPin, presented: string): boolean {
    const pvvOk = equalSecrets(pvvOf(stored.pvkId, stored.pvki, pan, presented), stored.pvv);
    const pinOk = equalSecrets(openStoredPin(pan, stored.pinSealed), presented);
    return pvvOk && pinOk;
  }

  return {
    activeKeyId: (type) => activeKey(type).id,
    listKeys: (): KeyInfo[] => keys.map(({ material: _material, ...info }) => info),

    deriveCvv: async (input) => cvvOf(input),
    async deriveCvvBatch(inputs) {
      const results: string[] = new Array(inputs.length);
      const byKey = new Map<string, number[]>();
      inputs.forEach((input, i) => {
        const group = byKey.get(input.cvkId);
        if (group) group.push(i);
        else byKey.set(input.cvkId, [i]);
      });
      for (const [cvkId, indexes] of byKey) {
        const cvvs = computeCvvBatch(
          key(cvkId, "cvk").material,
          indexes.map((i) => inputs[i]!),
        );
        indexes.forEach((inputIndex, j) => {
          results[inputIndex] = cvvs[j]!;
        });
      }
      return results;
    },
    verifyCvv: async (input, presented) => equalSecrets(cvvOf(input), presented),

    sealPan: async (pan, binding) => sealText("pan-data", pan, panAad(binding)),
    openPan: async (sealed, binding) => openText(sealed, "pan-data", panAad(binding), "PAN"),

    sealWebhookSecret: async (secret, binding) => sealText("webhook-secret", secret, webhookSecretAad(binding)),
    openWebhookSecret: async (sealed, binding) =>
      openText(sealed, "webhook-secret", webhookSecretAad(binding), "webhook secret"),

    async panFingerprint(pan) {
      const k = activeKey("fingerprint");
      return `${k.id}:${createHmac("sha256", k.material).update(pan).digest("base64url")}`;
    },

    async sealPin(pan, pin) {
      const storage = activeKey("pin-storage");
      const pvk = activeKey("pvk");
      const pvki = 1;
      const block = encipherPinBlock({ format: 4, pin, pan, key: storage.material }).toString("hex").toUpperCase();
      return {
        pvkId: pvk.id,
        pvki,
        pvv: pvvOf(pvk.id, pvki, pan, pin),
        pinSealed: [ENVELOPE_VERSION, storage.id, block].join(":"),
      };
    },

    openPin: async (pan, stored) => openStoredPin(pan, stored.pinSealed),

    verifyPin: async (pan, stored, presented) => pinMatches(pan, stored, presented),

    async verifyPinBlock(pan, stored, { format, pinBlock, keyId }) {
      const pek = keyId ? byId.get(keyId) : activeKey(format === 4 ? "pek-aes" : "pek-tdes");
      const expectedType: KeyType = format === 4 ? "pek-aes" : "pek-tdes";
      if (!pek || pek.type !== expectedType) {
        throw new AppError("validation_failed", `keyId does not name a ${expectedType} key in the keystore.`, {
          fields: { keyId: [`must name a ${expectedType} key for format ${format}`] },
        });
      }
      let presented: string;
      try {
        presented = decipherPinBlock({ format, block: pinBlock, pan, key: pek.material });
      } catch (error) {
        if (!(error instanceof CryptoInputError)) throw error;
        throw new AppError("validation_failed", `The PIN block does not decode as format ${format} under key ${pek.id}.`, {
          fields: { pinBlock: ["does not decode under the given key and format"] },
        });
      }
      return pinMatches(pan, stored, presented);
    },
  };
}

function panAad(binding: { tenantId: string; cardId: string }): Buffer {
  return Buffer.from(`cardvault:pan:${binding.tenantId}:${binding.cardId}`);
}

function webhookSecretAad(binding: { tenantId: string; endpointId: string }): Buffer {
  return Buffer.from(`cardvault:webhook-secret:${binding.tenantId}:${binding.endpointId}`);
}

/** Constant-time for equal lengths; lengths are not secret (a CVV is 3 digits, a PIN's length is public). */
function equalSecrets(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
