// Identifiers. Row ids are UUIDv7 (time-ordered, so audit cursors sort by creation); public tokens are the
// 9-digit card handles Thredd clients expect. Both come from the CSPRNG: neither reveals anything about a card.
import { randomFillSync, randomInt } from "node:crypto";
import type { Clock } from "./clock.js";

let last = { ms: -1, tail: 0n };

// Random bytes drawn 4 KB at a time (as node:crypto's randomUUID does): one CSPRNG call per ~400 ids instead
// of one per id, which the scheduler's batches and every audited request make many of.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;
function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += bytes;
  return pool.toString("hex", poolOffset - bytes, poolOffset);
}
const TAIL_BITS = 74n;
const TAIL_MAX = (1n << TAIL_BITS) - 1n;

/**
 * UUIDv7, monotonic within the process (RFC 9562 §6.2 method 3): ids made in the same millisecond — or
 * while a test clock stands still — keep increasing, so id order is creation order for every cursor.
 */
export function uuidv7(clock: Clock): string {
  let ms = clock.now().getTime();
  let tail = BigInt(`0x${randomHex(10)}`) & TAIL_MAX;
  if (ms <= last.ms) {
    ms = last.ms;
    tail = last.tail + 1n + (tail & 0xffffn);
    if (tail > TAIL_MAX) {
      ms += 1;
      tail &= 0xffffffffn;
    }
  }
  last = { ms, tail };
  const bytes = Buffer.alloc(16);
  bytes.writeUIntBE(ms, 0, 6);
  // 74 bits of tail around the version (4 bits) and variant (2 bits) fields.
  const rand = tail;
  bytes[6] = 0x70 | Number((rand >> 70n) & 0x0fn);
  bytes[7] = Number((rand >> 62n) & 0xffn);
  bytes[8] = 0x80 | Number((rand >> 56n) & 0x3fn);
  for (let i = 9; i < 16; i++) bytes[i] = Number((rand >> BigInt(8 * (15 - i))) & 0xffn);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A 9-digit public token without a leading zero (clients sometimes treat it as a number). */
export function newPublicToken(): string {
  return String(randomInt(100_000_000, 1_000_000_000));
}

export const PUBLIC_TOKEN_PATTERN = "^[0-9]{9}$";
