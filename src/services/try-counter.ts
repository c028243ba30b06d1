// The try counter both the CVV and the PIN use: verify (one atomic step, audited, a "blocked" event when a
// wrong try uses up the last one), status, and block/unblock. One implementation, so the two secrets can never
// drift apart in their rules.
import {
  counterStepFor,
  type TryState,
  tryState,
  type VerifyOutcome,
  verifyOutcome,
} from "../domain/tries.js";
import type { EventPublisher } from "../events/outbox.js";
import type { Clock } from "../lib/clock.js";
import type { CardRepo, CardWithLimits, CounterState, Secret } from "../store/card-repo.js";
import type { Store } from "../store/db.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { findOpenCard, findOpenCounters } from "./card-lookup.js";

export interface TryCounterDeps {
  store: Pick<Store, "transaction">;
  cards: CardRepo;
  record: AuditRecorder;
  publish: EventPublisher;
  clock: Clock;
}

export interface StatusChange {
  description?: string;
  updatedBy?: string;
}

export function createTryCounter(deps: TryCounterDeps, secret: Secret) {
  const maxOf = (card: CounterState) => (secret === "cvv" ? card.max_cvv_tries : card.max_pin_tries);
  const remainingOf = (card: CounterState) =>
    secret === "cvv" ? card.cvv_tries_remaining : card.pin_tries_remaining;

  return {
    status: (card: CounterState): TryState => tryState(remainingOf(card), maxOf(card)),

    /** Records the result of a comparison: one atomic counter step and its audit row, in one transaction. */
    recordAttempt(
      actor: Actor,
      card: CardWithLimits,
      matched: boolean,
      method?: string,
    ): Promise<VerifyOutcome> {
      const max = maxOf(card);
      return deps.store.transaction(async (tx) => {
        const after = await deps.cards.stepCounter(card.id, secret, counterStepFor(matched), max, tx);
        const outcome = verifyOutcome(matched, after, max);
        await deps.record(tx, actor, {
          action: `${secret}.verify`,
          outcome: outcome.result,
          card,
          details: { remainingTries: outcome.remainingTries, method },
        });
        if (outcome.result === "mismatch" && outcome.status === "Blocked") {
          await deps.publish(tx, {
            tenantId: actor.tenantId,
            cardId: card.id,
            type: `${secret}.blocked`,
            data: { publicToken: card.public_token, reason: "too_many_wrong_tries" },
          });
        }
        return outcome;
      });
    },

    /** Unblocked restores the full count (at any time, as Thredd does); Blocked sets it to zero. */
    setStatus(
      actor: Actor,
      card: CardWithLimits,
      status: TryState["status"],
      change: StatusChange,
    ): Promise<TryState> {
      const value = status === "Unblocked" ? maxOf(card) : 0;
      return deps.store.transaction(async (tx) => {
        await deps.cards.setCounter(card.id, secret, value, deps.clock.now().toISOString(), tx);
        await deps.record(tx, actor, {
          action: status === "Unblocked" ? `${secret}.unblock` : `${secret}.block`,
          outcome: "success",
          card,
          details: {
            previousRemainingTries: remainingOf(card),
            description: change.description,
            updatedBy: change.updatedBy,
          },
        });
        await deps.publish(tx, {
          tenantId: actor.tenantId,
          cardId: card.id,
          type: status === "Unblocked" ? `${secret}.unblocked` : `${secret}.blocked`,
          data: {
            publicToken: card.public_token,
            reason: status === "Unblocked" ? "unblocked" : "blocked_by_request",
          },
        });
        return tryState(value, maxOf(card));
      });
    },
  };
}

export type TryCounter = ReturnType<typeof createTryCounter>;

/** The card-level counter operations the CVV and PIN services both offer, by public token. */
export function counterOperations(cards: CardRepo, counter: TryCounter) {
  return {
    async status(actor: Actor, publicToken: string): Promise<TryState> {
      return counter.status(await findOpenCounters(cards, actor, publicToken));
    },
    async setStatus(actor: Actor, publicToken: string, status: TryState["status"], change: StatusChange) {
      return counter.setStatus(actor, await findOpenCard(cards, actor, publicToken), status, change);
    },
  };
}
