// The brute-force limiter of the verify, reveal and secure-data routes. An attempt is counted once, by one
// atomic UPSERT in every bucket (in the store, so limits hold across processes), in the transaction that
// commits: the card operation's own when it goes through, so an allowed attempt costs no commit of its own;
// otherwise one of its own, which also writes the refusal's audit record. No secret is ever part of a bucket
// or an audit row.
import { AppError } from "../domain/errors.js";
import { bucketsFor, type LimitedAttempt, type RateLimits, verdict, windowOf } from "../domain/rate-limit.js";
import type { Clock } from "../lib/clock.js";
import type { Db, Store } from "../store/db.js";
import type { RateLimitRepo } from "../store/rate-limit-repo.js";
import type { Actor, AuditRecorder } from "./audit.js";

export interface RateLimitServiceDeps {
  store: Pick<Store, "transaction">;
  rateLimits: RateLimitRepo;
  record: AuditRecorder;
  clock: Clock;
  limits: RateLimits;
}

/** Thrown when an attempt is over a limit; the HTTP layer answers 429 with Retry-After. */
export class RateLimitedError extends AppError {
  readonly retryAfterSeconds: number;
  constructor(scope: "card" | "tenant", retryAfterSeconds: number) {
    super(
      "rate_limited",
      `Too many attempts for this ${scope}; retry after ${retryAfterSeconds} s. The attempt was not processed.`,
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export function createRateLimitService(deps: RateLimitServiceDeps) {
  let prunedWindow = "";

  /** Counts the attempt in tx; the refusal when a limit is passed (nothing audited yet). */
  async function count(tx: Db, actor: Actor, attempt: LimitedAttempt) {
    const window = windowOf(deps.clock.now(), deps.limits.windowSeconds);
    const buckets = bucketsFor(deps.limits, actor.tenantId, attempt.publicToken);
    const counts = await deps.rateLimits.increment(
      buckets.map((b) => b.key),
      window.start,
      tx,
    );
    // Once per window per process: windows before the previous one can no longer block anything.
    if (prunedWindow !== window.start) {
      prunedWindow = window.start;
      const previous = windowOf(new Date(Date.parse(window.start) - 1), deps.limits.windowSeconds).start;
      await deps.rateLimits.prune(previous, tx);
    }
    const refused = verdict(buckets, counts, window.secondsLeft);
    return refused.allowed ? undefined : refused;
  }

  return {
    /**
     * Counts the actor's attempt, if it makes one, inside the operation's transaction; throws RateLimitedError
     * when a limit is passed, which rolls the whole operation back (see settle).
     */
    async charge(tx: Db, actor: Actor): Promise<void> {
      if (!actor.attempt) return;
      const refused = await count(tx, actor, actor.attempt);
      if (refused) throw new RateLimitedError(refused.scope, refused.retryAfterSeconds);
    },

    /**
     * After an operation failed (its transaction, and the count in it, rolled back): counts the attempt on its
     * own, so a refused or failing attempt counts as well. Over a limit it audits the refusal and returns the
     * error to answer instead; otherwise the operation's own error.
     */
    async settle(actor: Actor, failure: unknown): Promise<unknown> {
      const attempt = actor.attempt;
      if (!attempt) return failure;
      return deps.store.transaction(async (tx) => {
        const refused = await count(tx, actor, attempt);
        if (!refused) return failure;
        await deps.record(tx, actor, {
          action: "rate_limit.blocked",
          outcome: "blocked",
          details: {
            kind: attempt.kind,
            route: attempt.route,
            limitedBy: refused.scope,
            limit: refused.limit,
            windowSeconds: deps.limits.windowSeconds,
            publicToken: attempt.publicToken,
          },
        });
        return new RateLimitedError(refused.scope, refused.retryAfterSeconds);
      });
    },
  };
}

export type RateLimitService = ReturnType<typeof createRateLimitService>;
