// The brute-force limiter of the verify, reveal and secure-data routes. An attempt is counted once, by one
// atomic UPSERT in every bucket (in the store, so limits hold across processes), in the transaction that
// commits: the card operation's own when it goes through, so an allowed attempt costs no commit of its own;
// otherwise one of its own, which also writes the refusal's audit record. No secret is ever part of a bucket
// or an audit row.
import { AppError } from "../domain/errors.js";
import {
  bucketsFor,
  type LimitedAttempt,
  type RateLimitBucket,
  type RateLimits,
  verdict,
  windowOf,
} from "../domain/rate-limit.js";
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
  /** The length of the window whose limit was passed. */
  readonly windowSeconds: number;
  constructor(
    refusal: { scope: "card" | "tenant"; limit: number; retryAfterSeconds: number; windowSeconds: number },
    what = "attempts",
  ) {
    super(
      "rate_limited",
      `Too many ${what} for this ${refusal.scope}; retry after ${refusal.retryAfterSeconds} s. The attempt was not processed.`,
    );
    this.retryAfterSeconds = refusal.retryAfterSeconds;
    this.scope = refusal.scope;
    this.limit = refusal.limit;
    this.windowSeconds = refusal.windowSeconds;
  }
}

export function createRateLimitService(deps: RateLimitServiceDeps) {
  /**
   * The buckets this process has seen reach their limit, each until its window ends (its own counts return
   * the total of every process): the next attempt in them would pass it, so it is refused before any work.
   * Ended ones are forgotten once a minute; the rows themselves go by the purge job (jobs/purge.ts).
   */
  const full = new Map<string, { start: string; end: string }>();
  let swept = 0;
  const forgetEnded = (now: Date) => {
    if (now.getTime() - swept < 60_000) return;
    swept = now.getTime();
    const iso = now.toISOString();
    for (const [key, seen] of full) if (seen.end <= iso) full.delete(key);
  };

  const windowsOf = (buckets: readonly RateLimitBucket[], now: Date) =>
    buckets.map((b) => ({ bucket: b, window: windowOf(now, b.windowSeconds) }));

  /** Counts the attempt in tx; the refusal when a limit is passed (nothing audited yet). */
  async function count(tx: Db, actor: Actor, attempt: LimitedAttempt) {
    const now = deps.clock.now();
    const windows = windowsOf(bucketsFor(deps.limits, actor.tenantId, attempt), now);
    if (windows.length === 0) return undefined;
    const counts = await deps.rateLimits.increment(
      windows.map(({ bucket, window }) => ({
        bucket: bucket.key,
        windowStart: window.start,
        windowEnd: window.end,
        sharded: bucket.scope === "tenant",
      })),
      tx,
    );
    for (const { bucket, window } of windows) {
      if ((counts.get(bucket.key) ?? 0) >= bucket.limit) {
        full.set(bucket.key, { start: window.start, end: window.end });
      }
    }
    const refused = verdict(
      windows.map((w) => w.bucket),
      counts,
      now,
    );
    return refused.allowed ? undefined : new RateLimitedError(refused);
  }

  return {
    /**
     * Before an operation does any work: refuses (RateLimitedError) an attempt in a bucket this process has
     * seen reach its limit in its current window. No statement: the authoritative count comes last (charge),
     * and an attempt another process took over the limit is refused there, rolled back, and known from then on.
     */
    check(actor: Actor): void {
      if (!actor.attempt || full.size === 0) return;
      const now = deps.clock.now();
      forgetEnded(now);
      const windows = windowsOf(bucketsFor(deps.limits, actor.tenantId, actor.attempt), now);
      const seen = new Map(
        windows.map(({ bucket, window }) => [
          bucket.key,
          full.get(bucket.key)?.start === window.start ? bucket.limit + 1 : 0,
        ]),
      );
      const refused = verdict(
        windows.map((w) => w.bucket),
        seen,
        now,
      );
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
            windowSeconds: refusal.windowSeconds,
            publicToken: attempt.publicToken,
          },
        });
        return refusal;
      });
    },
  };
}

export type RateLimitService = ReturnType<typeof createRateLimitService>;
