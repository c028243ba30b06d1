// Reveal-session rules: which fields a session may show, how long it lives, which origin may embed the page
// and receive its messages, how many sessions a card may have minted in an hour. Pure; time and the production
// flag come in as arguments. An origin is accepted only in its exact serialised form (scheme://host[:port]),
// with a real host name or IP literal (never a wildcard: it becomes the page's CSP frame-ancestors), over
// https, or over http on a loopback host (127.0.0.0/8, ::1, localhost) outside production.
import { AppError, validationFailed } from "./errors.js";

export const revealFields = ["pan", "expiry", "cvv", "pin"] as const;
export type RevealField = (typeof revealFields)[number];

/** Whether a string names a reveal field: a type guard for callers holding plain strings. */
export function isRevealField(field: string): field is RevealField {
  return (revealFields as readonly string[]).includes(field);
}

export const REVEAL_TTL_DEFAULT_SECONDS = 300;
export const REVEAL_TTL_MIN_SECONDS = 10;
export const REVEAL_TTL_MAX_SECONDS = 900;

/** The per-card cap counts the sessions minted in the hour before a mint. */
export const SESSION_CAP_WINDOW_MS = 3_600_000;

/** A DNS host name: dot-separated LDH labels of 1–63 characters, no leading or trailing hyphen, ≤ 253 in all. */
const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);
/** IPv4 as the URL parser serialises it (dotted decimal), and an IPv6 literal in brackets. */
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

function isLoopback(hostname: string): boolean {
  return (
    hostname === "localhost" || hostname === "[::1]" || (IPV4.test(hostname) && hostname.startsWith("127."))
  );
}

/**
 * The origin the page may be framed by and post to; anything but a bare origin with a real host is refused.
 * `production` (from configuration) refuses http altogether.
 */
/**
 * The shape every accepted targetOrigin has (scheme, then a lower-case host or IP literal and an optional port,
 * nothing after): the request schema publishes it; parseTargetOrigin applies the rest of the rules.
 */
export const TARGET_ORIGIN_PATTERN = "^https?://[a-z0-9.:\\[\\]-]+$";

export function parseTargetOrigin(value: string, options: { production: boolean }): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw validationFailed("targetOrigin", "targetOrigin must be an origin such as https://app.example.com.");
  }
  if (url.origin !== value) {
    throw validationFailed(
      "targetOrigin",
      "targetOrigin must be an origin only (scheme, host and port; no path, query or trailing slash).",
    );
  }
  const { hostname } = url;
  if (!(HOST_NAME.test(hostname) || IPV4.test(hostname) || IPV6.test(hostname))) {
    throw validationFailed(
      "targetOrigin",
      "targetOrigin must name one host (a DNS name or an IP address); wildcards are not allowed.",
    );
  }
  if (url.protocol === "https:") return value;
  if (url.protocol === "http:" && isLoopback(hostname) && !options.production) return value;
  throw validationFailed(
    "targetOrigin",
    options.production
      ? "targetOrigin must use https."
      : "targetOrigin must use https (http only on a loopback host: localhost, 127.0.0.0/8, [::1]).",
  );
}

/** Deduplicated, in the canonical order; at least one field. */
export function normaliseFields(fields: readonly string[]): RevealField[] {
  const unknown = fields.filter((f) => !(revealFields as readonly string[]).includes(f));
  if (unknown.length > 0 || fields.length === 0) {
    throw validationFailed("fields", `fields must be a non-empty list of ${revealFields.join(", ")}.`);
  }
  return revealFields.filter((f) => fields.includes(f));
}

export function sessionExpiry(now: Date, ttlSeconds: number | undefined): Date {
  const ttl = ttlSeconds ?? REVEAL_TTL_DEFAULT_SECONDS;
  if (!Number.isInteger(ttl) || ttl < REVEAL_TTL_MIN_SECONDS || ttl > REVEAL_TTL_MAX_SECONDS) {
    throw validationFailed(
      "ttlSeconds",
      `ttlSeconds must be an integer from ${REVEAL_TTL_MIN_SECONDS} to ${REVEAL_TTL_MAX_SECONDS}.`,
    );
  }
  return new Date(now.getTime() + ttl * 1000);
}

/**
 * The per-card hourly cap on minted sessions: given the creation instants of the card's sessions in the hour
 * before now, the seconds until the oldest of them leaves the hour when minting one more would pass the cap;
 * undefined when it may be minted.
 */
export function sessionCapRetryAfter(
  createdInLastHour: readonly string[],
  now: Date,
  perHour: number,
): number | undefined {
  if (createdInLastHour.length < perHour) return undefined;
  const sorted = [...createdInLastHour].sort();
  // The session whose leaving the hour brings the count back under the cap.
  const freeing = sorted[sorted.length - perHour]!;
  return Math.max(1, Math.ceil((Date.parse(freeing) + SESSION_CAP_WINDOW_MS - now.getTime()) / 1000));
}

/**
 * Sessions that expired before this instant may be deleted (the purge job): expired, they can no longer deliver,
 * spent or not, and created before it, they no longer count towards the per-card cap. A spent session is kept
 * until then too, as the cap counts it.
 */
export function sessionsPurgeableBefore(now: Date): Date {
  return new Date(now.getTime() - SESSION_CAP_WINDOW_MS);
}

/** A session's state when it is presented: only an unused, unexpired one may deliver. */
export function assertSessionUsable(
  session: { used_at: string | null; expires_at: string },
  now: Date,
): void {
  if (session.used_at !== null) {
    throw new AppError(
      "reveal_session_used",
      "This reveal session was already used; ask the card program for a new one.",
    );
  }
  if (Date.parse(session.expires_at) <= now.getTime()) {
    throw new AppError("reveal_session_expired", "This reveal session has expired; ask for a new one.");
  }
}
