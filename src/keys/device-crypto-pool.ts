// The key provider's worker threads for Get Card Data's private-key operations (device-crypto-worker.ts): an
// RSA-4096 unwrap costs ≈ 10 ms of CPU and a PS256 signature ≈ 3 ms; on the event loop, a tenant sending
// garbage keys would stall every other request. Invariants:
// - The private keys reach the threads once, when the pool starts (KeyObjects, which cross to a thread as a
//   reference to the same native key); tasks name keys by id. New key versions start a new pool; the old one
//   finishes its tasks first.
// - A delivery is admitted for its whole course (unwrap, then signature) or refused at once, before any work,
//   with 503 `overloaded`: at most `threads + queue` deliveries hold the pool, so the signature of an admitted
//   delivery, whose card data is already committed as read, never finds the queue full.
import { availableParallelism } from "node:os";
import type { JWK } from "jose";
import { Piscina } from "piscina";
import { OverloadedError } from "../domain/errors.js";
import type { DeviceCryptoTask, DeviceCryptoWorkerData, UnwrappedKey } from "./device-crypto-worker.js";

export interface DeviceCryptoPoolSettings {
  /** Worker threads (CARDVAULT_SECURE_DATA_THREADS); default: one fewer than the CPUs, at least one. */
  threads: number;
  /** Deliveries admitted beyond one per thread, waiting (CARDVAULT_SECURE_DATA_QUEUE); default 32. */
  queue: number;
}

export function defaultDeviceCryptoPool(): DeviceCryptoPoolSettings {
  // One CPU stays with the event loop (and the store); on one CPU the thread shares it.
  return { threads: Math.max(1, availableParallelism() - 1), queue: 32 };
}

/**
 * The threads yield the CPU to the event loop (and the store) when both want it: on a machine with few cores
 * the RSA work would otherwise slow every other tenant's requests by taking their core, not their loop.
 */
const NICE_INCREMENT = 10;

/** A full pool drains within a few signatures' time: a client may retry after a second. */
const RETRY_AFTER_SECONDS = 1;

// Compiled, the worker is the .js beside this .js. Run from the TypeScript sources (tsx: `npm run dev`, the
// tests, `npm run bench -- --tsx`), it is the .ts beside this .ts, and its thread needs the same loader.
const fromSources = import.meta.url.endsWith(".ts");
const worker = new URL(`./device-crypto-worker.${fromSources ? "ts" : "js"}`, import.meta.url);
const execArgv = fromSources ? [...process.execArgv, "--import", import.meta.resolve("tsx")] : undefined;

export interface DeviceCryptoPool {
  /** Admits one delivery, or throws OverloadedError; call the returned release once, when it is over. */
  admit(): () => void;
  unwrap(wrappedKey: Buffer, keyIds: string[]): Promise<{ key: Buffer; wrapKeyId: string } | undefined>;
  sign(keyId: string, data: Buffer): Promise<Buffer>;
  /** The payload goes to the thread, which wipes it after use; the caller's buffer is wiped at once. */
  jwe(keyId: string, payload: Buffer, deviceKey: JWK): Promise<string>;
  /** The private secure-data keys the next pool starts with (a new key version was adopted). */
  useKeys(keys: DeviceCryptoWorkerData["keys"]): void;
  close(): Promise<void>;
}

export function createDeviceCryptoPool(settings: DeviceCryptoPoolSettings): DeviceCryptoPool {
  const capacity = settings.threads + settings.queue;
  let admitted = 0;
  let keys: DeviceCryptoWorkerData["keys"] = new Map();
  let pool: Piscina<DeviceCryptoTask, unknown> | undefined;

  function run(task: DeviceCryptoTask, transferList?: ArrayBuffer[]): Promise<unknown> {
    pool ??= new Piscina({
      filename: worker.href,
      name: "runDeviceCrypto",
      execArgv,
      minThreads: settings.threads,
      maxThreads: settings.threads,
      niceIncrement: NICE_INCREMENT,
      // Never reached: admission holds at most `capacity` deliveries, each with one task at a time.
      maxQueue: capacity,
      workerData: { keys } satisfies DeviceCryptoWorkerData,
    });
    return pool.run(task, { transferList });
  }

  /** A copy of exactly the bytes, in a buffer of its own (a Buffer may be a slice of a shared pool). */
  const own = (bytes: Buffer) => new Uint8Array(bytes);

  return {
    admit() {
      if (admitted >= capacity) {
        throw new OverloadedError(
          `Get Card Data is at capacity; nothing was done. Retry in ${RETRY_AFTER_SECONDS} s.`,
          RETRY_AFTER_SECONDS,
        );
      }
      admitted++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        admitted--;
      };
    },

    async unwrap(wrappedKey, keyIds) {
      const input = own(wrappedKey);
      const result = (await run({ op: "unwrap", wrappedKey: input, keyIds }, [input.buffer])) as
        | UnwrappedKey
        | undefined;
      if (!result) return undefined;
      return { key: Buffer.from(result.key.buffer), wrapKeyId: result.wrapKeyId };
    },

    async sign(keyId, data) {
      const input = own(data);
      const signature = (await run({ op: "sign", keyId, data: input }, [input.buffer])) as Uint8Array;
      return Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength);
    },

    async jwe(keyId, payload, deviceKey) {
      const input = own(payload);
      payload.fill(0);
      return (await run({ op: "jwe", keyId, payload: input, deviceKey }, [input.buffer])) as string;
    },

    useKeys(next) {
      keys = next;
      const previous = pool;
      pool = undefined;
      // Its queued and running tasks complete; the next task starts a pool with the new keys. Stopping it
      // cannot fail a request (each task answered or failed its own caller already).
      previous?.close().catch(() => {});
    },

    async close() {
      const previous = pool;
      pool = undefined;
      await previous?.close();
    },
  };
}
