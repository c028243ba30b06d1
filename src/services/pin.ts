// PIN operations. The PIN lives only as an enciphered ISO 9564 format-4 block plus a PVV; it is opened only
// for an explicit, audited read, and an enciphered PIN block presented for verification is opened inside the
// key provider, never here.
import { randomInt } from "node:crypto";
import type { EventPublisher } from "../events/outbox.js";
import type { KeyProvider, StoredPin } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import type { CardRepo, CardWithLimits } from "../store/card-repo.js";
import type { Store } from "../store/db.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { findOpenCard } from "./card-lookup.js";
import { counterOperations, type StatusChange, type TryCounter } from "./try-counter.js";

export interface PinServiceDeps {
  store: Pick<Store, "transaction">;
  cards: CardRepo;
  keys: KeyProvider;
  record: AuditRecorder;
  publish: EventPublisher;
  counter: TryCounter;
  clock: Clock;
}

export type PinAttempt = { pin: string } | { pinBlock: string; format: 0 | 1 | 3 | 4; keyId?: string };

/** A random PIN for a new card, as Thredd allocates one at creation. */
export function randomPin(length = 4): string {
  let pin = "";
  for (let i = 0; i < length; i++) pin += String(randomInt(10));
  return pin;
}

function storedPin(card: CardWithLimits): StoredPin {
  return { pvkId: card.pvk_id, pvki: card.pvki, pvv: card.pvv, pinSealed: card.pin_sealed };
}

export function createPinService(deps: PinServiceDeps) {
  const openPan = (actor: Actor, card: CardWithLimits) =>
    deps.keys.openPan(card.pan_sealed, { tenantId: actor.tenantId, cardId: card.id });

  return {
    ...counterOperations(deps.cards, deps.counter),
    /** Sets or changes the PIN; a new PIN starts with a full try counter. */
    async set(actor: Actor, publicToken: string, pin: string, change: StatusChange = {}): Promise<void> {
      const card = await findOpenCard(deps.cards, actor, publicToken);
      const sealed = await deps.keys.sealPin(await openPan(actor, card), pin);
      await deps.store.transaction(async (tx) => {
        await deps.cards.update(
          card.id,
          {
            pin_sealed: sealed.pinSealed,
            pvv: sealed.pvv,
            pvk_id: sealed.pvkId,
            pvki: sealed.pvki,
            pin_tries_remaining: card.max_pin_tries,
          },
          deps.clock.now().toISOString(),
          tx,
        );
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

    async get(actor: Actor, publicToken: string): Promise<{ pin: string }> {
      const card = await findOpenCard(deps.cards, actor, publicToken);
      const pin = await deps.keys.openPin(await openPan(actor, card), storedPin(card));
      await deps.store.transaction((tx) =>
        deps.record(tx, actor, { action: "pin.read", outcome: "success", card }),
      );
      return { pin };
    },

    async verify(actor: Actor, publicToken: string, attempt: PinAttempt) {
      const card = await findOpenCard(deps.cards, actor, publicToken);
      const pan = await openPan(actor, card);
      const matched =
        "pin" in attempt
          ? await deps.keys.verifyPin(pan, storedPin(card), attempt.pin)
          : await deps.keys.verifyPinBlock(pan, storedPin(card), attempt);
      return deps.counter.recordAttempt(
        actor,
        card,
        matched,
        "pin" in attempt ? "pin" : `pin_block_format_${attempt.format}`,
      );
    },
  };
}

export type PinService = ReturnType<typeof createPinService>;
