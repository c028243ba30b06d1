// Finding a caller's card. A card of another tenant is looked up with the caller's tenant id and so is
// simply not found: it answers exactly like a card that does not exist.
import { assertCardOpen, type CardStatus } from "../domain/card.js";
import { cardNotFound } from "../domain/errors.js";
import type { CardRepo, CardWithLimits } from "../store/card-repo.js";
import type { Db } from "../store/db.js";
import type { Actor } from "./audit.js";

export async function findCard(
  cards: CardRepo,
  actor: Actor,
  publicToken: string,
  tx?: Db,
): Promise<CardWithLimits> {
  const card = await cards.findByToken(actor.tenantId, publicToken, tx);
  if (!card) throw cardNotFound();
  return card;
}

/** For CVV and PIN operations: the card must exist for this tenant and must not be closed. */
export async function findOpenCard(
  cards: CardRepo,
  actor: Actor,
  publicToken: string,
): Promise<CardWithLimits> {
  const card = await findCard(cards, actor, publicToken);
  assertCardOpen(card.status as CardStatus);
  return card;
}
