// Slow hashes of API client secrets: scrypt (RFC 7914) from node:crypto, run on libuv's thread pool (never on
// the event loop). Parameters N = 2^14, r = 8, p = 1 (16 MiB, tens of milliseconds a hash on one core): RFC
// 7914 §2's figures for interactive use. They are below OWASP's floor for *passwords* (N = 2^17) on purpose: a
// client secret is 256 random bits, not a password a person chose, so no dictionary applies and the hash is
// defence in depth for a stolen database, not what stops guessing (that is the failure limit before any hash
// is computed, and the secret's entropy). Cheaper hashes also bound what a flood of token requests costs. The
// parameters are stored with each hash, so they can be raised later and old hashes still verify. Comparison is
// constant-time.
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

const PARAMS = { N: 2 ** 14, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

function derive(
  secret: string,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
  bytes: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is exactly that, with no headroom.
    scrypt(secret, salt, bytes, { N, r, p, maxmem: 256 * N * r }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/** `scrypt$N$r$p$salt$hash` (base64url), with a fresh random salt. */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(secret, salt, PARAMS.N, PARAMS.r, PARAMS.p, KEY_BYTES);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/** Whether the secret matches the stored hash; false for a hash in no format we know (never throws on it). */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const match = FORMAT.exec(stored);
  if (!match) return false;
  const [, N, r, p, salt, hash] = match;
  const expected = Buffer.from(hash!, "base64url");
  const key = await derive(
    secret,
    Buffer.from(salt!, "base64url"),
    Number(N),
    Number(r),
    Number(p),
    expected.length,
  );
  return timingSafeEqual(key, expected);
}

/**
 * A hash no secret matches, computed once: an unknown client id is checked against it, so answering "unknown
 * client" takes as long as "wrong secret" and client ids cannot be told apart by timing.
 */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashSecret(randomBytes(32).toString("base64url"));
  return decoy;
}
