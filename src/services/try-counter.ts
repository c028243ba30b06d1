// The try counter both the CVV and the PIN use: verify (one atomic step, audited, a "blocked" event when a
// wrong try uses up the last one), status, and block/unblock. One implementation, so the two secrets can never
// drift apart in their rules; what differs between them is one table keyed by the secret, so a third secret
// that does not fill in its row does not compile.
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
import type { Db } from "../store/db.js";
import type { Actor, AuditRecorder } from "./audit.js";
import {
  CardMovedError,
  type CardTransaction,
  findOpenCounters,
  usable,
  written,
} from "./card-transaction.js";

/** Where each secret keeps its count and its limit. */
const counters: Record<Secret, { remaining: (c: CounterState) => number; max: (c: CounterState) => number }> =
  {
    cvv: { remaining: (c) => c.cvv_tries_remaining, max: (c) => c.max_cvv_tries },
    pin: { remaining: (c) => c.pin_tries_remaining, max: (c) => c.max_pin_tries },
  };

export interface TryCounterDeps {
  cards: Pick<CardRepo, "stepCounter" | "setCounter" | "findCountersByToken">;
  withCard: CardTransaction;
  record: AuditRecorder;
  publish: EventPublisher;
  clock: Clock;
}

export interface StatusChange {
  description?: string;
  updatedBy?: string;
}

export function createTryCounter(deps: TryCounterDeps, secret: Secret) {
  const { remaining, max } = counters[secret];

  return {
    /**
     * Records the result of a comparison inside the operation's transaction: one atomic counter step on the
     * card as read (a card that moved meanwhile is decided again), its audit row, and the event when a wrong
     * try used up the last one.
     */
    async recordAttempt(
      tx: Db,
      actor: Actor,
      card: CardWithLimits,
      matched: boolean,
      method?: string,
      /** Extra audit details (fixed words, never the presented value). */
      note?: Record<string, string>,
    ): Promise<VerifyOutcome> {
      const after = await deps.cards.stepCounter(
        card.id,
        secret,
        counterStepFor(matched),
        max(card),
        card,
        tx,
      );
      if (after === "moved") throw new CardMovedError();
      const outcome = verifyOutcome(matched, after === "blocked" ? null : after, max(card));
      await deps.record(tx, actor, {
        action: `${secret}.verify`,
        outcome: outcome.result,
        card,
        details: { remainingTries: outcome.remainingTries, method, ...note },
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
    },

    /** The counter of an open card of this tenant. */
    async status(actor: Actor, publicToken: string): Promise<TryState> {
      const card = await findOpenCounters(deps.cards, actor, publicToken);
      return tryState(remaining(card), max(card));
    },

    /**
     * Unblocked restores the full count (at any time, as Thredd does); Blocked sets it to zero. Only an
     * unblock counts against the route's limit (it hands out fresh tries); a block is a safety action that
     * is never refused for being frequent.
     */
    setStatus(
      actor: Actor,
      publicToken: string,
      status: TryState["status"],
      change: StatusChange,
    ): Promise<TryState> {
      const counted = status === "Unblocked" ? actor : { ...actor, attempt: undefined };
      return deps.withCard(counted, publicToken, async (tx, card) => {
        usable(card, "manage");
        const value = status === "Unblocked" ? max(card) : 0;
        const expected = { version: card.version, remaining: remaining(card) };
        written(
          await deps.cards.setCounter(card.id, secret, value, expected, deps.clock.now().toISOString(), tx),
        );
        await deps.record(tx, actor, {
          action: status === "Unblocked" ? `${secret}.unblock` : `${secret}.block`,
          outcome: "success",
          card,
          details: {
            previousRemainingTries: remaining(card),
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
        return tryState(value, max(card));
      });
    },
  };
}

export type TryCounter = ReturnType<typeof createTryCounter>;
