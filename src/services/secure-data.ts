// Get Card Data: a card's PAN, CVV, expiry (and PIN when the tenant enables it) delivered encrypted to the
// cardholder's device, under a session key only the device holds. A session key delivers once: its digest is
// claimed in the same transaction as the audit record, so a replay is refused and nothing is sent twice.
// The session key is unwrapped, used and wiped inside keys/; it is never logged, stored or returned.
import { expiryToDate } from "../domain/card.js";
import { AppError } from "../domain/errors.js";
import type { KeyProvider, SecureDataPublicKey } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import type { CardRepo } from "../store/card-repo.js";
import type { Store } from "../store/db.js";
import type { SecureDataRepo } from "../store/secure-data-repo.js";
import type { TenantRepo } from "../store/tenant-repo.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { findOpenCard } from "./card-lookup.js";

export interface SecureDataServiceDeps {
  store: Pick<Store, "transaction">;
  cards: CardRepo;
  tenants: TenantRepo;
  sessionKeys: SecureDataRepo;
  keys: KeyProvider;
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

/** The clear payload, in Thredd's field names; exists only between the key provider's calls. */
interface CardData {
  PAN: string;
  CVV: string;
  expiryDate: string;
  PIN?: string;
}

export function createSecureDataService(deps: SecureDataServiceDeps) {
  async function payloadOf(actor: Actor, publicToken: string, pinWanted: boolean) {
    const card = await findOpenCard(deps.cards, actor, publicToken);
    const tenant = await deps.tenants.find(actor.tenantId);
    const withPin = pinWanted && tenant?.secure_data_pin === 1;
    const pan = await deps.keys.openPan(card.pan_sealed, { tenantId: actor.tenantId, cardId: card.id });
    const data: CardData = {
      PAN: pan,
      CVV: await deps.keys.deriveCvv({
        cvkId: card.cvk_id,
        pan,
        expiry: card.expiry,
        serviceCode: card.cvv_service_code,
      }),
      expiryDate: expiryToDate(card.expiry),
    };
    if (withPin) {
      data.PIN = await deps.keys.openPin(pan, {
        pvkId: card.pvk_id,
        pvki: card.pvki,
        pvv: card.pvv,
        pinSealed: card.pin_sealed,
      });
    }
    return { card, withPin, payload: Buffer.from(JSON.stringify(data), "utf8") };
  }

  return {
    /** The public keys a device needs: every current wrap and sign key (the active ones first). */
    publicKeys(): SecureDataPublicKey[] {
      const now = deps.clock.now().toISOString();
      return deps.keys
        .secureDataKeys()
        .filter((k) => k.active || k.notAfter > now)
        .sort((a, b) => Number(b.active) - Number(a.active) || a.kid.localeCompare(b.kid));
    },

    /** `includePin: false` leaves the PIN out even where the tenant enables it (a reveal session that did not ask). */
    async deliver(
      actor: Actor,
      publicToken: string,
      request: SecureDataRequest,
      options: { includePin?: boolean } = {},
    ): Promise<SecureDataAnswer> {
      const { card, withPin, payload } = await payloadOf(actor, publicToken, options.includePin ?? true);
      let answer: SecureDataAnswer;
      let replayId: string;
      try {
        if ("wrappedKey" in request) {
          const sealed = await deps.keys.sealForDevice({
            wrappedKey: request.wrappedKey,
            payload,
            now: deps.clock.now(),
            keyId: request.keyId,
          });
          replayId = sealed.replayId;
          answer = {
            kind: "rsa",
            iv: sealed.iv.toString("base64"),
            encryptedPayload: sealed.encryptedPayload.toString("base64"),
            signatureOfPayloadAndIv: sealed.signature.toString("base64"),
            wrapKeyId: sealed.wrapKeyId,
            signingKeyId: sealed.signingKeyId,
          };
        } else {
          const sealed = await deps.keys.sealForDeviceJwe({ deviceKey: request.deviceKey, payload });
          replayId = sealed.replayId;
          answer = { kind: "jwe", jwe: sealed.jwe, signingKeyId: sealed.signingKeyId };
        }
      } finally {
        payload.fill(0);
      }

      const method = answer.kind === "rsa" ? "rsa-oaep+aes-cbc" : "ecdh-es+a256gcm";
      const details = {
        method,
        wrapKeyId: answer.kind === "rsa" ? answer.wrapKeyId : undefined,
        signingKeyId: answer.signingKeyId,
        includesPin: withPin,
      };
      const first = await deps.store.transaction(async (tx) => {
        const claimed = await deps.sessionKeys.claim(
          {
            replay_id: replayId,
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
          details,
        });
        return claimed;
      });
      if (!first) {
        throw new AppError(
          "session_key_replayed",
          "This session key was already used: generate a fresh AES-256 key (or device key) for every request.",
        );
      }
      return answer;
    },
  };
}

export type SecureDataService = ReturnType<typeof createSecureDataService>;
