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
  readonly scope: "card" | "tenant";
  readonly limit: number;
  /** The window of the limit passed, when it is not the limiter's own (e.g. the hourly reveal-session cap). */
  readonly windowSeconds?: number;
  constructor(
    refusal: { scope: "card" | "tenant"; limit: number; retryAfterSeconds: number; windowSeconds?: number },
    what = "attempts",
  ) {
    super(
      "rate_limited",
      `Too many ${what} for this ${refusal.scope}; retry after ${refusal.retryAfterSeconds} s. The attempt was not processed.`,
    );
    this.retryAfterSeconds = refusal.retryAfterSeconds;
    this.scope = refusal.scope;
    this.limit = refusal.limit;
    if (refusal.windowSeconds !== undefined) this.windowSeconds = refusal.windowSeconds;
  }
}

export function createRateLimitService(deps: RateLimitServiceDeps) {
  let prunedWindow = "";

  /**
   * The buckets this process has seen reach their limit in the current window (its own counts return the
   * total of every process): the next attempt in them would pass it, so it is refused before any work.
   */
  let full = { window: "", keys: new Set<string>() };

  const windowNow = () => windowOf(deps.clock.now(), deps.limits.windowSeconds);
  const bucketsOf = (actor: Actor, attempt: LimitedAttempt) =>
    bucketsFor(deps.limits, actor.tenantId, attempt.publicToken);

  /** Counts the attempt in tx; the refusal when a limit is passed (nothing audited yet). */
  async function count(tx: Db, actor: Actor, attempt: LimitedAttempt) {
    const window = windowNow();
    const buckets = bucketsOf(actor, attempt);
    const counts = await deps.rateLimits.increment(
      buckets.map((b) => b.key),
      window.start,
      tx,
    );
    if (full.window !== window.start) full = { window: window.start, keys: new Set() };
    for (const b of buckets) if ((counts.get(b.key) ?? 0) >= b.limit) full.keys.add(b.key);
    const refused = verdict(buckets, counts, window.secondsLeft);
    return refused.allowed ? undefined : new RateLimitedError(refused);
  }

  return {
    /**
     * Before an operation does any work: refuses (RateLimitedError) an attempt in a bucket this process has
     * seen reach its limit in this window. No statement: the authoritative count comes last (charge), and an
     * attempt another process took over the limit is refused there, rolled back, and known from then on.
     */
    check(actor: Actor): void {
      if (!actor.attempt) return;
      const window = windowNow();
      if (full.window !== window.start) return;
      const buckets = bucketsOf(actor, actor.attempt);
      const seen = new Map(buckets.map((b) => [b.key, full.keys.has(b.key) ? b.limit + 1 : 0]));
      const refused = verdict(buckets, seen, window.secondsLeft);
      if (!refused.allowed) throw new RateLimitedError(refused);
    },

    /**
     * Counts the actor's attempt, if it makes one, as the last step of the operation's transaction (on
     * PostgreSQL the tenant's window row is then locked only until the commit); throws RateLimitedError when a
     * limit is passed, which rolls the whole operation back (see settle).
     */
    async charge(tx: Db, actor: Actor): Promise<void> {
      if (!actor.attempt) return;
      const refused = await count(tx, actor, actor.attempt);
      if (refused) throw refused;
    },

    /**
     * After an operation failed (its transaction, and the count in it, rolled back): counts the attempt on its
     * own, so a refused or failing attempt counts as well. A refusal — this count's, or the operation's own if
     * the window turned meanwhile — is audited and is the answer; otherwise the operation's own error.
     */
    async settle(actor: Actor, failure: unknown): Promise<unknown> {
      const attempt = actor.attempt;
      if (!attempt) return failure;
      return deps.store.transaction(async (tx) => {
        const refusal =
          (await count(tx, actor, attempt)) ?? (failure instanceof RateLimitedError ? failure : undefined);
        if (!refusal) return failure;
        await deps.record(tx, actor, {
          action: "rate_limit.blocked",
          outcome: "blocked",
          details: {
            kind: attempt.kind,
            route: attempt.route,
            limitedBy: refusal.scope,
            limit: refusal.limit,
            windowSeconds: refusal.windowSeconds ?? deps.limits.windowSeconds,
            publicToken: attempt.publicToken,
          },
        });
        return refusal;
      });
    },

    /**
     * Housekeeping, once per window per process, outside any transaction: windows before the previous one can
     * no longer block anything. A prune that fails is tried again by the next call.
     */
    async prune(): Promise<void> {
      const window = windowNow();
      if (prunedWindow === window.start) return;
      const previous = windowOf(new Date(Date.parse(window.start) - 1), deps.limits.windowSeconds).start;
      try {
        await deps.rateLimits.prune(previous);
        prunedWindow = window.start;
      } catch {
        // The store is failing; the request that ran into it has already answered so.
      }
    },
  };
}

export type RateLimitService = ReturnType<typeof createRateLimitService>;
