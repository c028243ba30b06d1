// Brute-force and abuse limits as pure rules: fixed windows, the buckets an attempt of each class counts
// against, and the verdict from the counts the store returns. The store increments atomically; this module
// only decides, so every process on one database reaches the same verdict from the same counts.
//
// The classes, as routes declare them (http/route-contract.ts):
// - verify, reveal, secure-data: attempts on a card's secrets, counted per tenant and per card in the
//   short window, all three in the same two buckets;
// - secure-data also in a bucket of its own per tenant: each Get Card Data costs an RSA private-key operation,
//   so a tenant's share of that CPU is bounded on its own, well below its verify rate;
// - manage: unblocks and on-demand CVV rotations, per card per day. Each gives a guesser a fresh set of tries,
//   so together with the wrong-try budget they bound how fast a card's CVV or PIN can be searched.
// And, outside the route contracts (the token endpoint has no bearer token, hence no tenant):
// - token failures: refused client-credentials attempts at POST /oauth2/token, per client id and per source
//   address; once either is over its limit, the next attempt is refused before its secret is checked.
export type RateLimitClass = "verify" | "reveal" | "secure-data" | "manage";

/** A limited attempt, as its route declares it: its class, its route and the card it names. */
export interface LimitedAttempt {
  kind: RateLimitClass;
  route: string;
  publicToken?: string;
}

export interface RateLimits {
  /** verify/reveal/secure-data attempts per card (tenant + public token) per window. */
  perCard: number;
  /** verify/reveal/secure-data attempts per tenant per window. */
  perTenant: number;
  windowSeconds: number;
  /** Get Card Data requests per tenant per window, besides the two above. */
  secureDataPerTenant: number;
  /** Unblocks and on-demand rotations per card per day. */
  managePerCardDay: number;
}

export const DAY_SECONDS = 86_400;

export interface RateLimitBucket<S extends string = "card" | "tenant"> {
  key: string;
  scope: S;
  limit: number;
  windowSeconds: number;
}

export type RateLimitVerdict<S extends string = "card" | "tenant"> =
  | { allowed: true }
  | {
      allowed: false;
      scope: S;
      limit: number;
      retryAfterSeconds: number;
      windowSeconds: number;
    };

export interface Window {
  /** ISO start: with the bucket, the row key. */
  start: string;
  /** ISO end: when the row can go. */
  end: string;
  secondsLeft: number;
}

/** The window of a given length an instant falls in. */
export function windowOf(now: Date, windowSeconds: number): Window {
  const size = windowSeconds * 1000;
  const start = Math.floor(now.getTime() / size) * size;
  return {
    start: new Date(start).toISOString(),
    end: new Date(start + size).toISOString(),
    secondsLeft: Math.max(1, Math.ceil((start + size - now.getTime()) / 1000)),
  };
}

/** The buckets an attempt counts against (see the classes above); card buckets only when the route names one. */
export function bucketsFor(limits: RateLimits, tenantId: string, attempt: LimitedAttempt): RateLimitBucket[] {
  const token = attempt.publicToken;
  const short = limits.windowSeconds;
  if (attempt.kind === "manage") {
    return token === undefined
      ? []
      : [
          {
            key: `manage:card:${tenantId}:${token}`,
            scope: "card",
            limit: limits.managePerCardDay,
            windowSeconds: DAY_SECONDS,
          },
        ];
  }
  const buckets: RateLimitBucket[] = [
    { key: `tenant:${tenantId}`, scope: "tenant", limit: limits.perTenant, windowSeconds: short },
  ];
  if (attempt.kind === "secure-data") {
    buckets.push({
      key: `secure-data:tenant:${tenantId}`,
      scope: "tenant",
      limit: limits.secureDataPerTenant,
      windowSeconds: short,
    });
  }
  if (token !== undefined) {
    buckets.push({
      key: `card:${tenantId}:${token}`,
      scope: "card",
      limit: limits.perCard,
      windowSeconds: short,
    });
  }
  return buckets;
}

/**
 * Blocked as soon as any bucket's count (this attempt included) passes its limit; a card's bucket is named
 * first, and the retry comes when the bucket's own window ends.
 */
export function verdict<S extends string>(
  buckets: readonly RateLimitBucket<S>[],
  counts: ReadonlyMap<string, number>,
  now: Date,
): RateLimitVerdict<S> {
  const over = [...buckets]
    .sort((a, b) => (a.scope === b.scope ? 0 : a.scope === "card" ? -1 : 1))
    .find((b) => (counts.get(b.key) ?? 0) > b.limit);
  return over
    ? {
        allowed: false,
        scope: over.scope,
        limit: over.limit,
        retryAfterSeconds: windowOf(now, over.windowSeconds).secondsLeft,
        windowSeconds: over.windowSeconds,
      }
    : { allowed: true };
}

/** Refused client-credentials attempts allowed per client id and per source address in one window. */
export interface TokenFailureLimits {
  perClient: number;
  perSource: number;
  windowSeconds: number;
}

/** The buckets a token request's failures count in: its source always, its client id when it names one. */
export function tokenFailureBuckets(
  limits: TokenFailureLimits,
  source: string,
  clientId: string | undefined,
): RateLimitBucket<"client" | "source">[] {
  const buckets: RateLimitBucket<"client" | "source">[] = [
    {
      key: `token:source:${source}`,
      scope: "source",
      limit: limits.perSource,
      windowSeconds: limits.windowSeconds,
    },
  ];
  if (clientId !== undefined) {
    buckets.unshift({
      key: `token:client:${clientId}`,
      scope: "client",
      limit: limits.perClient,
      windowSeconds: limits.windowSeconds,
    });
  }
  return buckets;
}
