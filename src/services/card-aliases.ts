// Vendor identifiers of imported cards (issue 15): a card brought over from Pismo keeps the integer card id the
// program's systems know it by, and the Pismo paths take it. A card issued here has no Pismo id: its public
// token is its id there, and as Pismo ids are integers, the token may come without its leading zeros.
import type { CardRepo } from "../store/card-repo.js";
import type { Actor } from "./audit.js";

export function createCardAliasService(deps: { cards: Pick<CardRepo, "tokenByPismoId"> }) {
  return {
    /**
     * The public token of the card a Pismo path names (digits): the tenant's card imported with that Pismo id,
     * else the card whose public token it is (zero-padded to 9 digits). An unknown id comes back as the token
     * it would be, which no card has: the service then answers 404 like any unknown card.
     */
    async byPismoId(actor: Actor, cardId: string): Promise<string> {
      const token = await deps.cards.tokenByPismoId(actor.tenantId, Number(cardId));
      return token ?? cardId.padStart(9, "0");
    },
  };
}

export type CardAliasService = ReturnType<typeof createCardAliasService>;
