// PIN operations. The PIN lives only as an enciphered ISO 9564 format-4 block plus a PVV; the key provider
// opens it only for an explicit, audited read, and an enciphered PIN block presented for verification is
// opened inside the key provider, never here. Each operation is one transaction on the card as read: a PIN
// set meanwhile makes a verify decide again against the new PIN.
import type { EventPublisher } from "../events/outbox.js";
import type { KeyProvider, PinBlockAttempt } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import type { CardRepo } from "../store/card-repo.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { type CardTransaction, open, sealedCardOf, written } from "./card-transaction.js";
import type { StatusChange, TryCounter } from "./try-counter.js";

export interface PinServiceDeps {
  withCard: CardTransaction;
  cards: Pick<CardRepo, "update">;
  keys: Pick<KeyProvider, "sealPin" | "openPin" | "verifyPin" | "verifyPinBlock">;
  record: AuditRecorder;
  publish: EventPublisher;
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

    /** Sets or changes the PIN; a new PIN starts with a full try counter. */
    set(actor: Actor, publicToken: string, pin: string, change: StatusChange = {}): Promise<void> {
      return deps.withCard(actor, publicToken, async (tx, card) => {
        const sealed = await deps.keys.sealPin(sealedCardOf(open(card)), pin);
        const changes = {
          pin_sealed: sealed.pinSealed,
          pvv: sealed.pvv,
          pvk_id: sealed.pvkId,
          pvki: sealed.pvki,
          pin_tries_remaining: card.max_pin_tries,
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
          data: { publicToken: card.public_token },
        });
      });
    },

    get(actor: Actor, publicToken: string): Promise<{ pin: string }> {
      return deps.withCard(actor, publicToken, async (tx, card) => {
        const pin = await deps.keys.openPin(sealedCardOf(open(card)));
        await deps.record(tx, actor, { action: "pin.read", outcome: "success", card });
        return { pin };
      });
    },

    verify(actor: Actor, publicToken: string, attempt: PinAttempt) {
      return deps.withCard(actor, publicToken, async (tx, card) => {
        const sealed = sealedCardOf(open(card));
        const matched =
          "pin" in attempt
            ? await deps.keys.verifyPin(sealed, attempt.pin)
            : await deps.keys.verifyPinBlock(sealed, attempt);
        const method = "pin" in attempt ? "pin" : `pin_block_format_${attempt.format}`;
        return deps.counter.recordAttempt(tx, actor, card, matched, method);
      });
    },
  };
}

export type PinService = ReturnType<typeof createPinService>;
