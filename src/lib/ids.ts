// Identifiers. Row ids are UUIDv7 (time-ordered, so audit cursors sort by creation); public tokens are the
// 9-digit card handles Thredd clients expect. Both come from the CSPRNG: neither reveals anything about a card.
import { randomBytes, randomInt } from "node:crypto";
import type { Clock } from "./clock.js";

export function uuidv7(clock: Clock): string {
  const ms = BigInt(clock.now().getTime());
  const bytes = randomBytes(16);
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A 9-digit public token without a leading zero (clients sometimes treat it as a number). */
export function newPublicToken(): string {
  return String(randomInt(100_000_000, 1_000_000_000));
}

export const PUBLIC_TOKEN_PATTERN = "^[0-9]{9}$";
