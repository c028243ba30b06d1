// Brute-force limits as pure rules: fixed windows per tenant and per card, the bucket names a request counts
// against, and the verdict from the counts the store returns. The store increments atomically; this module
// only decides, so every process on one database reaches the same verdict from the same counts.
export type RateLimitClass = "verify" | "reveal" | "secure-data";

/** A limited attempt, as its route declares it: its class, its route and the card it names. */
export interface LimitedAttempt {
  kind: RateLimitClass;
  route: string;
  publicToken?: string;
}

export interface RateLimits {
  /** Attempts per card (tenant + public token) per window, across every limited route. */
  perCard: number;
  /** Attempts per tenant per window, across every limited route. */
  perTenant: number;
  windowSeconds: number;
}

export interface RateLimitBucket {
  key: string;
  scope: "card" | "tenant";
  limit: number;
}

export type RateLimitVerdict =
  | { allowed: true }
  | { allowed: false; scope: "card" | "tenant"; limit: number; retryAfterSeconds: number };

/** The window an instant falls in: its start (ISO, the row key) and the seconds until it ends. */
export function windowOf(now: Date, windowSeconds: number): { start: string; secondsLeft: number } {
  const size = windowSeconds * 1000;
  const start = Math.floor(now.getTime() / size) * size;
  return {
    start: new Date(start).toISOString(),
    secondsLeft: Math.max(1, Math.ceil((start + size - now.getTime()) / 1000)),
  };
}

/** The buckets an attempt counts against: always its tenant, and its card when the route names one. */
export function bucketsFor(
  limits: RateLimits,
  tenantId: string,
  publicToken: string | undefined,
): RateLimitBucket[] {
  const buckets: RateLimitBucket[] = [
    { key: `tenant:${tenantId}`, scope: "tenant", limit: limits.perTenant },
  ];
  if (publicToken !== undefined) {
    buckets.push({ key: `card:${tenantId}:${publicToken}`, scope: "card", limit: limits.perCard });
  }
  return buckets;
}

/** Blocked as soon as any bucket's count (this attempt included) passes its limit; the card is named first. */
export function verdict(
  buckets: readonly RateLimitBucket[],
  counts: ReadonlyMap<string, number>,
  secondsLeft: number,
): RateLimitVerdict {
  const over = [...buckets]
    .sort((a, b) => (a.scope === b.scope ? 0 : a.scope === "card" ? -1 : 1))
    .find((b) => (counts.get(b.key) ?? 0) > b.limit);
  return over
    ? { allowed: false, scope: over.scope, limit: over.limit, retryAfterSeconds: secondsLeft }
    : { allowed: true };
}
