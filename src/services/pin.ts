// PIN operations. The PIN lives only as an enciphered ISO 9564 format-4 block plus a PVV; the key provider
// opens it only for an explicit, audited read, and an enciphered PIN block presented for verification is
// opened inside the key provider, never here. Each operation is one transaction on the card as read: a PIN
// set meanwhile makes a verify decide again against the new PIN. A presented block that deciphers to no valid
// block is a wrong try like a wrong PIN (same answer, counted, audited), so it tells the caller nothing more;
// format 1, not bound to the PAN, is accepted only for a tenant that allows it.

import { assertSecretDeliverable } from "../domain/card.js";
import { validationFailed } from "../domain/errors.js";
import type { EventPublisher } from "../events/outbox.js";
import { type KeyProvider, type PinBlockAttempt, PinBlockUndecodableError } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import type { CardRepo } from "../store/card-repo.js";
import type { TenantRepo } from "../store/tenant-repo.js";
import type { Actor, AuditRecorder } from "./audit.js";
import type { CardClock } from "./card-clock.js";
import { type CardTransaction, sealedCardOf, usable, written } from "./card-transaction.js";
import type { StatusChange, TryCounter } from "./try-counter.js";

export interface PinServiceDeps {
  withCard: CardTransaction;
  cards: Pick<CardRepo, "update">;
  tenants: Pick<TenantRepo, "find">;
  keys: Pick<KeyProvider, "sealPin" | "openPin" | "verifyPin" | "verifyPinBlock">;
  record: AuditRecorder;
  publish: EventPublisher;
  /** When an event happens: the card's time (a test clock's for a card on one). */
  cardClock: CardClock;
  counter: TryCounter;
  clock: Clock;
}

export type PinAttempt = { pin: string } | PinBlockAttempt;

/** A new card's PIN: as Thredd allocates one at creation, random, and seen by no one. */
export const NEW_PIN_LENGTH = 4;

export function createPinService(deps: PinServiceDeps) {
  return {
    status: deps.counter.status,
    setStatus: deps.counter.setStatus,

    /**
     * Sets or changes the PIN; a new PIN starts with a full try counter and a fresh wrong-try budget (no
     * compromise: guesses at the old PIN say nothing about it).
     */
    set(actor: Actor, publicToken: string, pin: string, change: StatusChange = {}): Promise<void> {
      return deps.withCard(actor, publicToken, async (tx, card) => {
        // A PIN set now gets its PVV under the card program's PVK when it names one (else the active PVK).
        const pvkId = (await deps.tenants.find(actor.tenantId, tx))?.pvk_id ?? undefined;
        const sealed = await deps.keys.sealPin(sealedCardOf(usable(card, "manage")), pin, pvkId);
        const changes = {
          pin_sealed: sealed.pinSealed,
          pvv: sealed.pvv,
          pvk_id: sealed.pvkId,
          pvki: sealed.pvki,
          pin_tries_remaining: card.max_pin_tries,
          pin_wrong_tries: "",
          pin_compromised_at: null,
        };
        written(await deps.cards.update(card.id, card, changes, deps.clock.now().toISOString(), tx));
        await deps.record(tx, actor, {
          action: "pin.set",
          outcome: "success",
          card,
          details: { description: change.description, updatedBy: change.updatedBy },
        });
        await deps.publish(tx, {
          tenantId: actor.tenantId,
          cardId: card.id,
          type: "pin.changed",
          occurredAt: await deps.cardClock(card, tx),
          data: { publicToken: card.public_token },
        });
      });
    },

    get(actor: Actor, publicToken: string): Promise<{ pin: string }> {
      return deps.withCard(actor, publicToken, async (tx, card) => {
        assertSecretDeliverable("pin", usable(card, "read").pin_tries_remaining);
        const pin = await deps.keys.openPin(sealedCardOf(card));
        await deps.record(tx, actor, { action: "pin.read", outcome: "success", card });
        return { pin };
      });
    },

    async verify(actor: Actor, publicToken: string, attempt: PinAttempt) {
      if (!("pin" in attempt) && attempt.format === 1) {
        const tenant = await deps.tenants.find(actor.tenantId);
        if (tenant?.allow_pin_block_format_1 !== 1) {
          throw validationFailed(
            "format",
            "format 1 PIN blocks are not bound to the PAN and this card program does not accept them; use format 0, 3 or 4.",
          );
        }
      }
      return deps.withCard(actor, publicToken, async (tx, card) => {
        const sealed = sealedCardOf(usable(card, "verify"));
        if ("pin" in attempt) {
          return deps.counter.recordAttempt(
            tx,
            actor,
            card,
            await deps.keys.verifyPin(sealed, attempt.pin),
            "pin",
          );
        }
        let matched = false;
        let note: Record<string, string> | undefined;
        try {
          matched = await deps.keys.verifyPinBlock(sealed, attempt);
        } catch (error) {
          if (!(error instanceof PinBlockUndecodableError)) throw error;
          note = { pinBlock: "did_not_decode" };
        }
        return deps.counter.recordAttempt(
          tx,
          actor,
          card,
          matched,
          `pin_block_format_${attempt.format}`,
          note,
        );
      });
    },
  };
}

export type PinService = ReturnType<typeof createPinService>;
