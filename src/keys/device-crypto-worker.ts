// One thread of the key provider's device-crypto pool (device-crypto-pool.ts): Get Card Data's private-key
// operations, off the event loop. It holds the private halves of the secure-data keys it was started with
// (workerData, once per thread) and takes key ids in its tasks, never key material. Invariants: nothing it
// returns or throws carries a key, a session key or a payload except the one result asked for (an unwrapped
// session key is moved to the caller, not copied, and wiped here); what a client sent that does not unwrap is
// an answer (undefined), not an error, so no ciphertext detail ever crosses back.
import { constants, type KeyObject, privateDecrypt, sign } from "node:crypto";
import { workerData } from "node:worker_threads";
import { CompactEncrypt, CompactSign, importJWK, type JWK } from "jose";
import { move, transferableSymbol, valueSymbol } from "piscina";

export type DeviceCryptoTask =
  /** RSA-OAEP-SHA256 under the first of keyIds that opens wrappedKey into 32 bytes. */
  | { op: "unwrap"; wrappedKey: Uint8Array; keyIds: string[] }
  /** RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) of data. */
  | { op: "sign"; keyId: string; data: Uint8Array }
  /** A compact JWS (PS256) of payload, inside a compact JWE (ECDH-ES + A256GCM) to the device's P-256 key. */
  | { op: "jwe"; keyId: string; payload: Uint8Array; deviceKey: JWK };

export interface UnwrappedKey {
  key: Uint8Array;
  wrapKeyId: string;
}

/** What the pool starts each thread with: the private secure-data keys by id (KeyObjects clone by reference). */
export interface DeviceCryptoWorkerData {
  keys: ReadonlyMap<string, KeyObject>;
}

const { keys } = workerData as DeviceCryptoWorkerData;

function keyOf(id: string): KeyObject {
  const key = keys.get(id);
  // A key id the provider chose and this thread lacks: a programming error, named without any material.
  if (!key) throw new Error(`The device-crypto thread was not started with key ${id}.`);
  return key;
}

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } as const;

/** The pool's task handler (piscina calls it by this name). */
export async function runDeviceCrypto(task: DeviceCryptoTask) {
  switch (task.op) {
    case "unwrap":
      return unwrap(task.wrappedKey, task.keyIds);
    case "sign":
      return sign("sha256", task.data, { key: keyOf(task.keyId), ...PSS });
    case "jwe":
      try {
        const jws = await new CompactSign(task.payload)
          .setProtectedHeader({ alg: "PS256", kid: task.keyId })
          .sign(keyOf(task.keyId));
        return await new CompactEncrypt(Buffer.from(jws))
          .setProtectedHeader({ alg: "ECDH-ES", enc: "A256GCM", cty: "JOSE" })
          .encrypt(await importJWK(task.deviceKey, "ECDH-ES"));
      } finally {
        task.payload.fill(0);
      }
  }
}

function unwrap(wrappedKey: Uint8Array, keyIds: readonly string[]) {
  for (const id of keyIds) {
    let opened: Buffer;
    try {
      opened = privateDecrypt(
        { key: keyOf(id), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
        wrappedKey,
      );
    } catch {
      continue;
    }
    if (opened.length === 32) {
      // Moved: the caller's copy is the only one left.
      const key = new Uint8Array(32);
      key.set(opened);
      opened.fill(0);
      const result: UnwrappedKey = { key, wrapKeyId: id };
      return move({ [transferableSymbol]: key.buffer, [valueSymbol]: result });
    }
    opened.fill(0);
  }
  return undefined;
}
