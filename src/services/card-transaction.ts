// One transaction per card operation. The operation finds the caller's card and holds it (no other transaction
// changes it until this one ends), decides from what it read and writes its change, its audit record and its
// events, all in one store transaction. Its decided writes are still guarded by the card's row version
// (store/card-repo.ts): should the card move anyway, the guarded write reports it and the whole operation runs
// again on what is there now, so a change that landed in between is never overwritten. A
// limited attempt (verify, CVV/PIN read, Get Card Data) is refused before any work when this process knows
// its bucket full, and counted last in that same transaction, so an allowed attempt commits once. Costly work
// that does not depend on the card's state (Get Card Data's RSA unwrap) runs before the transaction, never
// holding it, once the card is known to exist; an attempt that fails there is counted like any other. A card
// of another tenant is looked up with the caller's tenant id and is simply not found: it answers exactly like
// a card that does not exist.
import { assertCardAllows, type CardPath, type CardStatus } from "../domain/card.js";
import { AppError, cardNotFound } from "../domain/errors.js";
import type { SealedPinCard } from "../keys/key-provider.js";
import type { CardRepo, CardWithLimits, CounterState } from "../store/card-repo.js";
import type { Db, Store } from "../store/db.js";
import type { CardRow } from "../store/schema.js";
import type { Actor } from "./audit.js";
import type { RateLimitService } from "./rate-limits.js";

/** A guarded write found the card changed since it was read: read again, decide again. */
export class CardMovedError extends Error {
  constructor() {
    super("The card changed since it was read.");
    this.name = "CardMovedError";
  }
}

/** How often an operation decides again before it gives up with 409 concurrent_update. */
const MAX_ROUNDS = 5;

export interface CardTransactionDeps {
  store: Pick<Store, "transaction">;
  cards: Pick<CardRepo, "findByToken" | "lockByToken">;
  limits: Pick<RateLimitService, "check" | "charge" | "settle">;
}

export type CardWork<T> = (tx: Db, card: CardWithLimits) => Promise<T>;

/**
 * `withCard(actor, publicToken, work, before?)`: runs work on the card, in one transaction, as described above.
 * `before` runs once, after the limiter's check, on the card as found by a plain read (so an unknown card is a
 * 404 before any costly work); the transaction reads and holds the card again and decides on what it reads there.
 */
export type CardTransaction = <T>(
  actor: Actor,
  publicToken: string,
  work: CardWork<T>,
  before?: (card: CardWithLimits) => Promise<void>,
) => Promise<T>;

export function createCardTransaction(deps: CardTransactionDeps): CardTransaction {
  async function decide<T>(actor: Actor, publicToken: string, work: CardWork<T>): Promise<T> {
    for (let round = 1; ; round++) {
      try {
        return await deps.store.transaction(async (tx) => {
          const card = found(await deps.cards.lockByToken(actor.tenantId, publicToken, tx));
          const result = await work(tx, card);
          await deps.limits.charge(tx, actor);
          return result;
        });
      } catch (error) {
        if (!(error instanceof CardMovedError)) throw error;
        if (round === MAX_ROUNDS) {
          throw new AppError("concurrent_update", "The card is being changed by other requests; retry.");
        }
      }
    }
  }

  return async (actor, publicToken, work, before) => {
    try {
      deps.limits.check(actor);
      if (before) await before(await findCard(deps.cards, actor, publicToken));
      return await decide(actor, publicToken, work);
    } catch (error) {
      throw await deps.limits.settle(actor, error);
    }
  };
}

/** Guards a write's answer: false means the card moved since it was read (decide again). */
export function written(applied: boolean): void {
  if (!applied) throw new CardMovedError();
}

/** The card, when its status allows the path (domain/card.ts lifeCycle); else 409 card_closed / card_blocked. */
export function usable<T extends { status: string }>(card: T, path: CardPath): T {
  assertCardAllows(card.status as CardStatus, path);
  return card;
}

/** A plain read of the caller's card, for answers that change nothing. */
export async function findCard(
  cards: Pick<CardRepo, "findByToken">,
  actor: Actor,
  publicToken: string,
): Promise<CardWithLimits> {
  return found(await cards.findByToken(actor.tenantId, publicToken));
}

/** For a CVV or PIN status read: the counters of a card of this tenant that is not closed (nothing to guard). */
export async function findOpenCounters(
  cards: Pick<CardRepo, "findCountersByToken">,
  actor: Actor,
  publicToken: string,
): Promise<CounterState> {
  return usable(found(await cards.findCountersByToken(actor.tenantId, publicToken)), "manage");
}

/** The caller's card, or 404: another tenant's card is looked up with the caller's tenant id and not found. */
function found<T>(row: T | undefined): T {
  if (row === undefined) throw cardNotFound();
  return row;
}

/** The card as the key provider takes it: sealed PAN, binding and key ids; never a clear PAN. */
export function sealedCardOf(
  card: Pick<
    CardRow,
    | "id"
    | "tenant_id"
    | "pan_sealed"
    | "expiry"
    | "cvk_id"
    | "cvv_service_code"
    | "pvk_id"
    | "pvki"
    | "pvv"
    | "pin_sealed"
  >,
): SealedPinCard {
  return {
    tenantId: card.tenant_id,
    cardId: card.id,
    panSealed: card.pan_sealed,
    expiry: card.expiry,
    cvkId: card.cvk_id,
    serviceCode: card.cvv_service_code,
    pin: { pvkId: card.pvk_id, pvki: card.pvki, pvv: card.pvv, pinSealed: card.pin_sealed },
  };
}
