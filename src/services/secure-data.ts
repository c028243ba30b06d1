// Get Card Data: a card's PAN, CVV, expiry (and PIN when the tenant enables it) delivered encrypted to the
// cardholder's device, under a session key only the device holds. A session key delivers once: its digest is
// claimed in the same transaction as the audit record, so a replay is refused and nothing is sent twice.
// The session key is unwrapped, used and wiped inside keys/, and so is the clear payload (keys/card-data.ts);
// neither is ever logged, stored or returned. The card as read, its status check, the payload sealed from it,
// the replay claim and the audit record are one transaction; the costly private-key work is not in it (on
// SQLite one connection serialises every write): the session key is unwrapped before it, by the key
// provider's threads, and the answer signed after it commits. A delivery the provider has no room for is
// refused (503 overloaded) before anything is done or counted.
import { assertSecretDeliverable } from "../domain/card.js";
import { AppError } from "../domain/errors.js";
import type {
  CardDataField,
  DeviceSession,
  KeyProvider,
  SealedCardData,
  SecureDataPublicKey,
} from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import type { CardWithLimits } from "../store/card-repo.js";
import type { Db } from "../store/db.js";
import type { SecureDataRepo } from "../store/secure-data-repo.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { type CardTransaction, sealedCardOf, usable } from "./card-transaction.js";

export interface SecureDataServiceDeps {
  withCard: CardTransaction;
  sessionKeys: Pick<SecureDataRepo, "claim">;
  keys: Pick<KeyProvider, "secureDataKeys" | "deviceSession">;
  record: AuditRecorder;
  clock: Clock;
}

/** What the device asked with: an RSA-wrapped AES-256 session key, or its ephemeral P-256 public key. */
export type SecureDataRequest =
  | { wrappedKey: Buffer; keyId?: string }
  | { deviceKey: Record<string, unknown> };

export type SecureDataAnswer =
  | {
      kind: "rsa";
      iv: string;
      encryptedPayload: string;
      signatureOfPayloadAndIv: string;
      wrapKeyId: string;
      signingKeyId: string;
    }
  | { kind: "jwe"; jwe: string; signingKeyId: string };

/** What Get Card Data delivers: every field (the PIN only where the tenant enables PIN delivery). */
const GET_CARD_DATA_FIELDS: readonly CardDataField[] = ["pan", "cvv", "expiry", "pin"];

export function createSecureDataService(deps: SecureDataServiceDeps) {
  return {
    /** The public keys a device needs: every current wrap and sign key (the active ones first). */
    publicKeys(): SecureDataPublicKey[] {
      const now = deps.clock.now().toISOString();
      return deps.keys
        .secureDataKeys()
        .filter((k) => k.active || k.notAfter > now)
        .sort((a, b) => Number(b.active) - Number(a.active) || a.kid.localeCompare(b.kid));
    },

    /** Get Card Data for the caller's card: opened before its transaction, sealed in it, signed after it. */
    async deliver(actor: Actor, publicToken: string, request: SecureDataRequest): Promise<SecureDataAnswer> {
      const device = deviceSession(request);
      try {
        const sealed = await deps.withCard(
          actor,
          publicToken,
          (tx, card) =>
            deliverIn(tx, actor, usable(card, "secure-data"), device, { fields: GET_CARD_DATA_FIELDS }),
          async (card) => {
            // A card whose status refuses the path is refused before the costly unwrap too, as in the transaction.
            usable(card, "secure-data");
            await device.open();
          },
        );
        return await answer(device, sealed ?? replayed());
      } finally {
        device.close();
      }
    },

    deviceSession,
    deliverIn,
    answer,
  };

  /**
   * The key provider's session for one delivery, admitted now or refused (OverloadedError: 503, Retry-After)
   * before anything is done. Open it before the card transaction (in withCard's `before`: the card exists, and
   * a key that does not open is a counted attempt), deliverIn inside it, answer after it commits, close it in
   * any case.
   */
  function deviceSession(request: SecureDataRequest): DeviceSession {
    return deps.keys.deviceSession(
      "wrappedKey" in request ? { ...request, now: deps.clock.now() } : { deviceKey: request.deviceKey },
    );
  }

  /**
   * Delivers inside the caller's transaction on the card as read there (the caller decides whether the card's
   * status allows the path; a Blocked CVV or PIN is refused here, for every path): the payload sealed to the opened device session, its key claimed, the read audited.
   * Undefined when the session key already delivered once: the replay is audited, nothing is signed or sent,
   * and the caller answers replayed() after its transaction commits. The payload carries exactly
   * `fields` (a reveal session's own), less the PIN where the tenant does not enable PIN delivery.
   */
  async function deliverIn(
    tx: Db,
    actor: Actor,
    card: CardWithLimits,
    device: DeviceSession,
    options: { fields: readonly CardDataField[] },
  ): Promise<SealedCardData | undefined> {
    const withPin = options.fields.includes("pin") && card.secure_data_pin === 1;
    const fields = options.fields.filter((f) => f !== "pin" || withPin);
    if (fields.includes("cvv")) assertSecretDeliverable("cvv", card.cvv_tries_remaining);
    if (fields.includes("pin")) assertSecretDeliverable("pin", card.pin_tries_remaining);
    const sealed = await device.seal(sealedCardOf(card), fields);
    const claimed = await deps.sessionKeys.claim(
      {
        replay_id: device.replayId,
        tenant_id: actor.tenantId,
        card_id: card.id,
        used_at: deps.clock.now().toISOString(),
      },
      tx,
    );
    // A replay is worth a trace of its own: someone is presenting a key that already delivered secrets.
    await deps.record(tx, actor, {
      action: "secure_data.read",
      outcome: claimed ? "success" : "replay_refused",
      card,
      details: {
        method: sealed.method,
        wrapKeyId: sealed.wrapKeyId,
        signingKeyId: sealed.signingKeyId,
        includesPin: withPin,
      },
    });
    return claimed ? sealed : undefined;
  }

  /** The signed answer for what deliverIn sealed, once its transaction has committed. */
  async function answer(device: DeviceSession, sealed: SealedCardData): Promise<SecureDataAnswer> {
    const signed = await device.sign(sealed);
    if (signed.kind === "jwe") return signed;
    return {
      kind: "rsa",
      iv: signed.iv.toString("base64"),
      encryptedPayload: signed.encryptedPayload.toString("base64"),
      signatureOfPayloadAndIv: signed.signature.toString("base64"),
      wrapKeyId: signed.wrapKeyId,
      signingKeyId: signed.signingKeyId,
    };
  }
}

/** What a replayed session key gets, once the replay's audit record has committed. */
export function replayed(): never {
  throw new AppError(
    "session_key_replayed",
    "This session key was already used: generate a fresh AES-256 key (or device key) for every request.",
  );
}

export type SecureDataService = ReturnType<typeof createSecureDataService>;
