// The brute-force limiter the HTTP layer applies to verify, reveal and secure-data routes: one atomic UPSERT
// counts the attempt in every bucket (in the store, so limits hold across processes) and, when the attempt is
// refused, its audit record is written. No secret is ever part of a bucket or an audit row.
import { AppError } from "../domain/errors.js";
import { bucketsFor, type RateLimitClass, type RateLimits, verdict, windowOf } from "../domain/rate-limit.js";
import type { Clock } from "../lib/clock.js";
import type { Store } from "../store/db.js";
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

  return {
    /** Counts one attempt; throws RateLimitedError (after auditing it) when a limit is passed. */
    async attempt(
      actor: Actor,
      request: { kind: RateLimitClass; route: string; publicToken?: string },
    ): Promise<void> {
      const window = windowOf(deps.clock.now(), deps.limits.windowSeconds);
      const buckets = bucketsFor(deps.limits, actor.tenantId, request.publicToken);
      // The increment is one atomic statement: no transaction needed on the path every allowed attempt takes.
      const counts = await deps.rateLimits.increment(
        buckets.map((b) => b.key),
        window.start,
      );
      const refused = verdict(buckets, counts, window.secondsLeft);
      if (!refused.allowed) {
        await deps.store.transaction((tx) =>
          deps.record(tx, actor, {
            action: "rate_limit.blocked",
            outcome: "blocked",
            details: {
              kind: request.kind,
              route: request.route,
              limitedBy: refused.scope,
              limit: refused.limit,
              windowSeconds: deps.limits.windowSeconds,
              publicToken: request.publicToken,
            },
          }),
        );
      }
      // Once per window per process: windows before the previous one can no longer block anything.
      if (prunedWindow !== window.start) {
        prunedWindow = window.start;
        const previous = windowOf(new Date(Date.parse(window.start) - 1), deps.limits.windowSeconds).start;
        await deps.rateLimits.prune(previous);
      }
      if (!refused.allowed) throw new RateLimitedError(refused.scope, refused.retryAfterSeconds);
    },
  };
}

export type RateLimitService = ReturnType<typeof createRateLimitService>;
