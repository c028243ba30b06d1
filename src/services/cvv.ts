// CVV operations. The CVV is never stored: the key provider derives it from the sealed card (PAN, expiry and
// the card's CVV service code under its CVK) every time it is read or verified. A read or a verify is one
// transaction: the card as read, the derivation, the counter step or audit row, and the attempt's count.

import { assertSecretDeliverable } from "../domain/card.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { type CardTransaction, sealedCardOf, usable } from "./card-transaction.js";
import type { TryCounter } from "./try-counter.js";

export interface CvvServiceDeps {
  withCard: CardTransaction;
  keys: Pick<KeyProvider, "deriveCvv" | "verifyCvv">;
  record: AuditRecorder;
  counter: TryCounter;
}

export function createCvvService(deps: CvvServiceDeps) {
  return {
    status: deps.counter.status,
    setStatus: deps.counter.setStatus,

    get(actor: Actor, publicToken: string): Promise<{ cvv: string }> {
      return deps.withCard(actor, publicToken, async (tx, card) => {
        assertSecretDeliverable("cvv", usable(card, "read").cvv_tries_remaining);
        const cvv = await deps.keys.deriveCvv(sealedCardOf(card));
        await deps.record(tx, actor, { action: "cvv.read", outcome: "success", card });
        return { cvv };
      });
    },

    verify(actor: Actor, publicToken: string, cvv: string) {
      return deps.withCard(actor, publicToken, async (tx, card) => {
        const matched = await deps.keys.verifyCvv(sealedCardOf(usable(card, "verify")), cvv);
        return deps.counter.recordAttempt(tx, actor, card, matched);
      });
    },
  };
}

export type CvvService = ReturnType<typeof createCvvService>;
