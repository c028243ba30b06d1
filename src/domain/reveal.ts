// Reveal-session rules: which fields a session may show, how long it lives, which origin may embed the page
// and receive its messages. Pure; time comes in as an argument. An origin is accepted only in its exact
// serialised form (scheme://host[:port]) and over https, or http on a loopback host for development.
import { AppError, validationFailed } from "./errors.js";

export const revealFields = ["pan", "expiry", "cvv", "pin"] as const;
export type RevealField = (typeof revealFields)[number];

export const REVEAL_TTL_DEFAULT_SECONDS = 300;
export const REVEAL_TTL_MIN_SECONDS = 10;
export const REVEAL_TTL_MAX_SECONDS = 900;

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** The origin the page may be framed by and post to; anything but a bare origin is refused. */
export function parseTargetOrigin(value: string): string {
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
  if (url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK.has(url.hostname))) {
    throw validationFailed("targetOrigin", "targetOrigin must use https (http only on a loopback host).");
  }
  return value;
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
