// Card rules: types, the status life cycle, and expiry dates. Pure; time comes in as an argument.
import { AppError, validationFailed } from "./errors.js";

export const cardTypes = ["virtual", "physical"] as const;
export type CardType = (typeof cardTypes)[number];

/**
 * The cardholder name is embossed and printed: letters (ASCII, and the Latin accented ones of Latin-1 and
 * Latin Extended-A, precomposed), digits, space and . , ' - / &, not starting with a space. No control
 * characters (NUL, CR/LF, tab), no bidi overrides or other invisible format characters, no symbols or emoji.
 * A JSON Schema pattern (the routes' schemas use it; it allows "", their minLength says otherwise).
 */
export const CARDHOLDER_NAME_PATTERN =
  "^(?! )[A-Za-z0-9\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u017F .,'/&-]*$";
/** The documented maximum of the native API (Thredd's title + first + last name fit in it: 10 + 40 + 40 + 2). */
export const CARDHOLDER_NAME_MAX = 100;
const cardholderName = new RegExp(CARDHOLDER_NAME_PATTERN, "u");

/** Refuses a cardholder name outside the embossing set (400 naming the field), whatever path sets it. */
export function assertCardholderName(name: string): void {
  if (name.length < 1 || name.length > CARDHOLDER_NAME_MAX || !cardholderName.test(name)) {
    throw validationFailed(
      "cardholderName",
      `cardholderName must be 1–${CARDHOLDER_NAME_MAX} letters, digits, spaces or . , ' - / & (not starting with a space).`,
    );
  }
}

export const cardStatuses = ["active", "inactive", "suspended", "closed"] as const;
export type CardStatus = (typeof cardStatuses)[number];

/**
 * The paths a card is used on: `verify` (CVV and PIN verification, the authorisation host's), `read` (CVV and
 * PIN reads by the program), `secure-data` (Get Card Data to the cardholder's device), `reveal` (minting and
 * presenting reveal sessions), `rotate` (forced and scheduled CVV rotation), `manage` (block, unblock, set the
 * PIN, the rotation schedule). Card fields and status changes are not a path: they stay open on every status
 * but closed, whose only change is none (see next).
 */
export const cardPaths = ["verify", "read", "secure-data", "reveal", "rotate", "manage"] as const;
export type CardPath = (typeof cardPaths)[number];

/**
 * The card life cycle, one row per status: where a card may go from it, and which paths it allows — the one
 * table every service asks (docs/api.md "What each card status allows" prints it).
 * - active, inactive: everything. An inactive card is issued but not yet activated; a program commonly
 *   activates it after the cardholder proves possession with the CVV, so the secrets work.
 * - suspended: the secrets are frozen — not verified, read, delivered or shown — until the card is active
 *   again; the program may still manage it (unblock, set a PIN) and its CVV keeps rotating on schedule, so
 *   it comes back with a fresh one.
 * - closed: final. Nothing, and no way out.
 */
export const lifeCycle: Record<CardStatus, { next: readonly CardStatus[]; allows: readonly CardPath[] }> = {
  active: { next: cardStatuses, allows: cardPaths },
  inactive: { next: cardStatuses, allows: cardPaths },
  suspended: { next: cardStatuses, allows: ["rotate", "manage"] },
  closed: { next: ["closed"], allows: [] },
};

export function assertStatusTransition(from: CardStatus, to: CardStatus): void {
  if (!lifeCycle[from].next.includes(to)) {
    throw new AppError(
      "invalid_state_transition",
      from === "closed" ? "A closed card cannot be reopened." : `A card cannot go from ${from} to ${to}.`,
    );
  }
}

/** Refuses a path the card's status does not allow: 409 card_closed, or card_blocked while it is suspended. */
export function assertCardAllows(status: CardStatus, path: CardPath): void {
  if (lifeCycle[status].allows.includes(path)) return;
  if (status === "closed") {
    throw new AppError("card_closed", "The card is closed; its CVV, PIN and details can no longer be used.");
  }
  throw new AppError(
    "card_blocked",
    `The card is ${status}; its CVV and PIN cannot be verified, read or shown until it is active again.`,
  );
}

/** The secrets a try counter guards. */
export type Secret = "cvv" | "pin";

/**
 * A secret whose try counter is Blocked is not handed out on any path (read, Get Card Data, reveal) until it
 * is unblocked: whoever blocked it by guessing must not get it another way.
 */
export function assertSecretDeliverable(secret: Secret, remainingTries: number): void {
  if (remainingTries > 0) return;
  throw new AppError(
    `${secret}_blocked`,
    `The card's ${secret.toUpperCase()} is Blocked (too many wrong tries, or blocked on request); unblock it before it can be read or delivered.`,
  );
}

/** YYMM with a month from 01 to 12; the card routes' schemas publish this pattern. */
export const EXPIRY_PATTERN = "^([0-9]{2})(0[1-9]|1[0-2])$";
const EXPIRY = new RegExp(EXPIRY_PATTERN);

/** Expiry as YYMM (the form the CVV algorithm takes), valid when it is this month or later. */
export function parseExpiry(expiry: string, now: Date): string {
  const match = EXPIRY.exec(expiry);
  if (!match) throw fieldError("expiry", "expiry must be YYMM with a month from 01 to 12.");
  const thisMonth = (now.getUTCFullYear() % 100) * 100 + now.getUTCMonth() + 1;
  if (Number(match[1]) * 100 + Number(match[2]) < thisMonth) {
    throw fieldError("expiry", "expiry is in the past.");
  }
  return expiry;
}

/**
 * A change may state the card's expiry (Thredd's validityDate on a status change): it is honoured when it is
 * the card's own, and refused otherwise. A card's expiry never changes: its CVV is derived from it and the
 * cardholder holds it printed or provisioned; a new expiry is a new card.
 */
export function assertStatedExpiry(cardExpiry: string, stated: string): void {
  if (stated !== cardExpiry) {
    throw fieldError(
      "expiry",
      `The card expires ${expiryToDate(cardExpiry).slice(0, 7)}; its expiry cannot change (its CVV is derived from it): issue a new card.`,
    );
  }
}

/** Cards without an explicit expiry last this many years, to the month. */
export const DEFAULT_VALIDITY_YEARS = 3;

export function defaultExpiry(now: Date): string {
  const yy = (now.getUTCFullYear() + DEFAULT_VALIDITY_YEARS) % 100;
  const mm = now.getUTCMonth() + 1;
  return `${String(yy).padStart(2, "0")}${String(mm).padStart(2, "0")}`;
}

/** YYMM → the card's last valid day as YYYY-MM-DD (cards are valid to the end of the month). */
export function expiryToDate(expiry: string): string {
  const year = 2000 + Number(expiry.slice(0, 2));
  const month = Number(expiry.slice(2, 4));
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return `${year}-${expiry.slice(2, 4)}-${String(lastDay).padStart(2, "0")}`;
}

function fieldError(field: string, message: string): AppError {
  return new AppError("validation_failed", message, { fields: { [field]: [message] } });
}

/** PINs are 4 to 12 digits (ISO 9564-1). */
export const PIN_PATTERN = "^[0-9]{4,12}$";
export const CVV_PATTERN = "^[0-9]{3}$";

/**
 * The stored PIN of a card imported with its PVV only (`{pvki, pvv}` from the previous processor): no PIN block
 * is stored, so the PIN is verifiable (by PVV) but not retrievable (a read answers 409 pin_not_retrievable). A
 * later PIN change stores a block as usual. The value stands in the cards.pin_sealed column.
 */
export const PVV_ONLY_PIN = "pvv-only";
