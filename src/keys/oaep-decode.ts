// EME-OAEP decoding with SHA-256 and MGF1-SHA-256, empty label (RFC 8017 §7.1.2 step 3), for a PKCS#11 token
// that runs the raw RSA private operation (CKM_RSA_X_509) but not OAEP with SHA-256 (SoftHSM 2.6 knows only
// SHA-1). Invariant: every malformed encoding gives the same answer (undefined) after the same work, whatever
// is wrong, so no caller can tell a bad hash from a bad separator (Manger's attack needs that difference).
import { createHash, timingSafeEqual } from "node:crypto";

const H = 32;
const EMPTY_LABEL_HASH = createHash("sha256").digest();

function mgf1(seed: Buffer, length: number): Buffer {
  const out = Buffer.alloc(Math.ceil(length / H) * H);
  const counter = Buffer.alloc(4);
  for (let i = 0; i * H < length; i++) {
    counter.writeUInt32BE(i);
    createHash("sha256")
      .update(seed)
      .update(counter)
      .digest()
      .copy(out, i * H);
  }
  return out.subarray(0, length);
}

/** The message of an encoded block `em` of a k-byte modulus, or undefined if it is not a valid encoding. */
export function oaepDecodeSha256(em: Buffer, k: number): Buffer | undefined {
  if (k < 2 * H + 2) return undefined;
  // The raw RSA result may come without its leading zero bytes.
  const block = Buffer.alloc(k);
  if (em.length > k) return undefined;
  em.copy(block, k - em.length);
  const maskedSeed = block.subarray(1, 1 + H);
  const maskedDb = block.subarray(1 + H);
  const seed = mgf1(maskedDb, H);
  for (let i = 0; i < H; i++) seed[i] = seed[i]! ^ maskedSeed[i]!;
  const db = mgf1(seed, k - H - 1);
  for (let i = 0; i < db.length; i++) db[i] = db[i]! ^ maskedDb[i]!;
  // Constant-time over the whole block: find the 0x01 after the zero padding, collecting every fault.
  let bad = block[0]! | (timingSafeEqual(db.subarray(0, H), EMPTY_LABEL_HASH) ? 0 : 1);
  let found = 0;
  let index = 0;
  for (let i = H; i < db.length; i++) {
    const isOne = db[i]! === 1 ? 1 : 0;
    const isZero = db[i]! === 0 ? 1 : 0;
    index = found ? index : isOne ? i : index;
    bad |= found ? 0 : isOne | isZero ? 0 : 1;
    found |= isOne;
  }
  bad |= found ? 0 : 1;
  const message = bad ? undefined : Buffer.from(db.subarray(index + 1));
  db.fill(0);
  seed.fill(0);
  block.fill(0);
  return message;
}
