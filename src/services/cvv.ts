// CVV operations. The CVV is never stored: the key provider derives it from the sealed card (PAN, expiry and
// the card's CVV service code under its CVK) every time it is read or verified. A read or a verify is one
// transaction: the card as read, the derivation, the counter step or audit row, and the attempt's count.
import type { KeyProvider } from "../keys/key-provider.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { type CardTransaction, open, sealedCardOf } from "./card-transaction.js";
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
        const cvv = await deps.keys.deriveCvv(sealedCardOf(open(card)));
        await deps.record(tx, actor, { action: "cvv.read", outcome: "success", card });
        return { cvv };
      });
    },

    verify(actor: Actor, publicToken: string, cvv: string) {
      return deps.withCard(actor, publicToken, async (tx, card) => {
        const matched = await deps.keys.verifyCvv(sealedCardOf(open(card)), cvv);
        return deps.counter.recordAttempt(tx, actor, card, matched);
      });
    },
  };
}

export type CvvService = ReturnType<typeof createCvvService>;
