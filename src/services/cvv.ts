// CVV operations. The CVV is never stored: it is derived from the PAN, expiry and the card's CVV service code
// under the card's CVK every time it is read or verified.
import type { KeyProvider } from "../keys/key-provider.js";
import type { CardRepo, CardWithLimits } from "../store/card-repo.js";
import type { Store } from "../store/db.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { findOpenCard } from "./card-lookup.js";
import { counterOperations, type TryCounter } from "./try-counter.js";

export interface CvvServiceDeps {
  store: Pick<Store, "transaction">;
  cards: CardRepo;
  keys: KeyProvider;
  record: AuditRecorder;
  counter: TryCounter;
}

export function createCvvService(deps: CvvServiceDeps) {
  async function cvvInput(actor: Actor, card: CardWithLimits) {
    const pan = await deps.keys.openPan(card.pan_sealed, { tenantId: actor.tenantId, cardId: card.id });
    return { cvkId: card.cvk_id, pan, expiry: card.expiry, serviceCode: card.cvv_service_code };
  }

  return {
    ...counterOperations(deps.cards, deps.counter),

    async get(actor: Actor, publicToken: string): Promise<{ cvv: string }> {
      const card = await findOpenCard(deps.cards, actor, publicToken);
      const cvv = await deps.keys.deriveCvv(await cvvInput(actor, card));
      await deps.store.transaction((tx) =>
        deps.record(tx, actor, { action: "cvv.read", outcome: "success", card }),
      );
      return { cvv };
    },

    async verify(actor: Actor, publicToken: string, cvv: string) {
      const card = await findOpenCard(deps.cards, actor, publicToken);
      const matched = await deps.keys.verifyCvv(await cvvInput(actor, card), cvv);
      return deps.counter.recordAttempt(actor, card, matched);
    },
  };
}

export type CvvService = ReturnType<typeof createCvvService>;
