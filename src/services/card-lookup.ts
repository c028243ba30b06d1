// Finding a caller's card. A card of another tenant is looked up with the caller's tenant id and so is
// simply not found: it answers exactly like a card that does not exist.
import { assertCardOpen, type CardStatus } from "../domain/card.js";
import { cardNotFound } from "../domain/errors.js";
import type { CardRepo, CardWithLimits, CounterState } from "../store/card-repo.js";
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
  return open(await findCard(cards, actor, publicToken));
}

/** For a CVV or PIN status read: the counters of an open card of this tenant, found as findOpenCard finds it. */
export async function findOpenCounters(
  cards: CardRepo,
  actor: Actor,
  publicToken: string,
): Promise<CounterState> {
  const counters = await cards.findCountersByToken(actor.tenantId, publicToken);
  if (!counters) throw cardNotFound();
  return open(counters);
}

function open<T extends { status: string }>(card: T): T {
  assertCardOpen(card.status as CardStatus);
  return card;
}
