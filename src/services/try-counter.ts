// The try counter both the CVV and the PIN use: verify (one atomic step, audited, a "blocked" event when a
// wrong try uses up the last one), status, and block/unblock. One implementation, so the two secrets can never
// drift apart in their rules; what differs between them is one table keyed by the secret, so a third secret
// that does not fill in its row does not compile. Beside the counter runs the rolling wrong-try budget
// (domain/tries.ts), which no unblock restores: the wrong try that spends it compromises the secret in its own
// transaction (Blocked, audited, announced), and unblock answers 409 secret_compromised until the CVV is
// rotated or a new PIN is set (those clear it: store/card-repo.ts, services/pin.ts).
import { AppError } from "../domain/errors.js";
import {
  budgetSpent,
  counterStep,
  type TryState,
  tryState,
  type VerifyOutcome,
  verifyOutcome,
  type WrongTryBudget,
} from "../domain/tries.js";
import type { EventPublisher } from "../events/outbox.js";
import type { Clock } from "../lib/clock.js";
import {
  type CardRepo,
  type CardWithLimits,
  type CounterState,
  type Secret,
  wrongTryTimes,
} from "../store/card-repo.js";
import type { Db } from "../store/db.js";
import type { CardRow } from "../store/schema.js";
import type { Actor, AuditRecorder } from "./audit.js";
import type { CardClock } from "./card-clock.js";
import { type CardTransaction, findOpenCounters, usable, written } from "./card-transaction.js";

/** Where each secret keeps its count, its limit and its compromise, and what clears a compromise. */
const counters: Record<
  Secret,
  {
    remaining: (c: CounterState) => number;
    max: (c: CounterState) => number;
    wrongTries: (c: CardRow) => string;
    compromisedAt: (c: CardRow) => string | null;
    remedy: (c: CardRow) => string;
  }
> = {
  cvv: {
    remaining: (c) => c.cvv_tries_remaining,
    max: (c) => c.max_cvv_tries,
    wrongTries: (c) => c.cvv_wrong_tries,
    compromisedAt: (c) => c.cvv_compromised_at,
    remedy: (c) =>
      c.type === "virtual"
        ? "rotate the CVV to use it again"
        : "a physical card's CVV cannot change: reissue the card",
  },
  pin: {
    remaining: (c) => c.pin_tries_remaining,
    max: (c) => c.max_pin_tries,
    wrongTries: (c) => c.pin_wrong_tries,
    compromisedAt: (c) => c.pin_compromised_at,
    remedy: () => "set a new PIN to use it again",
  },
};

export interface TryCounterDeps {
  cards: Pick<CardRepo, "stepCounter" | "setCounter" | "compromise" | "findCountersByToken">;
  withCard: CardTransaction;
  record: AuditRecorder;
  publish: EventPublisher;
  /** When an event happens: the card's time (a test clock's for a card on one). */
  cardClock: CardClock;
  clock: Clock;
  budget: WrongTryBudget;
}

export interface StatusChange {
  description?: string;
  updatedBy?: string;
}

export function createTryCounter(deps: TryCounterDeps, secret: Secret) {
  const { remaining, max, wrongTries, compromisedAt, remedy } = counters[secret];
  const { budget } = deps;
  /** The fixed words of a compromise's audit row and event (never the values tried). */
  const compromiseDetails = {
    reason: "wrong_try_budget_spent" as const,
    wrongTries: budget.tries,
    windowHours: budget.windowHours,
  };

  return {
    /**
     * Records the result of a comparison inside the operation's transaction, on the card it holds: the counter
     * step (domain/tries.ts counterStep says which, and what it leaves), its audit row, and the event when a
     * wrong try used up the last one. The step is all a match costs (nothing, on a full counter); a wrong try
     * records its time in that same statement, and only the wrong try that spends the budget costs more: the
     * compromise (one guarded UPDATE), its audit row and its event.
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
      const now = deps.clock.now();
      const wrongTry = { at: now.toISOString(), keep: budget.tries };
      const counter = {
        remaining: remaining(card),
        max: max(card),
        wrongTries: wrongTryTimes(wrongTries(card)),
      };
      const stepped = counterStep(counter, matched, wrongTry);
      if (stepped !== "blocked" && stepped.step !== undefined) {
        await deps.cards.stepCounter(card.id, secret, stepped.step, max(card), wrongTry, tx);
      }
      const after = stepped === "blocked" ? stepped : stepped.after;
      const compromised = !matched && after !== "blocked" && budgetSpent(after.wrongTries, now, budget);
      if (compromised) written(await deps.cards.compromise(card.id, secret, card, now.toISOString(), tx));
      const remainingAfter = after === "blocked" ? null : compromised ? 0 : after.remaining;
      const outcome = verifyOutcome(matched, remainingAfter, max(card));
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
          occurredAt: await deps.cardClock(card, tx),
          data: { publicToken: card.public_token, reason: "too_many_wrong_tries" },
        });
      }
      if (compromised) {
        await deps.record(tx, actor, {
          action: `${secret}.compromised`,
          outcome: "blocked",
          card,
          details: compromiseDetails,
        });
        await deps.publish(tx, {
          tenantId: actor.tenantId,
          cardId: card.id,
          type: `card.${secret}.compromised`,
          occurredAt: await deps.cardClock(card, tx),
          data: { publicToken: card.public_token, ...compromiseDetails },
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
     * Unblocked restores the full count (at any time, as Thredd does) unless the secret is compromised;
     * Blocked sets it to zero. Only an unblock counts against the route's limit (it hands out fresh tries);
     * a block is a safety action that is never refused for being frequent.
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
        if (status === "Unblocked" && compromisedAt(card) !== null) {
          throw new AppError(
            "secret_compromised",
            `The ${secret.toUpperCase()} had ${budget.tries} wrong tries within ${budget.windowHours} hours and stays blocked; ${remedy(card)}.`,
          );
        }
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
        const publicToken = card.public_token;
        await deps.publish(tx, {
          tenantId: actor.tenantId,
          cardId: card.id,
          occurredAt: await deps.cardClock(card, tx),
          ...(status === "Unblocked"
            ? { type: `${secret}.unblocked` as const, data: { publicToken, reason: "unblocked" as const } }
            : {
                type: `${secret}.blocked` as const,
                data: { publicToken, reason: "blocked_by_request" as const },
              }),
        });
        return tryState(value, max(card));
      });
    },
  };
}

export type TryCounter = ReturnType<typeof createTryCounter>;
