// Where a test file's data lives: SQLite in its temporary data directory by default, or — in the PostgreSQL
// project (CARDVAULT_TEST_STORE=postgres) — a fresh database of its own on CARDVAULT_TEST_DATABASE_URL,
// created before the file and dropped after it.
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { Config } from "../../src/config.js";
import { initKeystore, loadKeystore } from "../../src/keys/keystore-file.js";
import { importSecretKey, openToken } from "../../src/keys/pkcs11-token.js";
import type { Clock } from "../../src/lib/clock.js";
import { connectStore, keystorePath, resolveMasterKey } from "../../src/runtime.js";
import { ensureSchema } from "../../src/store/db.js";
import { testRsaKeyGenerator } from "./test-rsa-keys.js";

export const testStore = process.env.CARDVAULT_TEST_STORE === "postgres" ? "postgres" : "sqlite";

export interface FreshDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A new, empty database on the server `baseUrl` names (`<prefix>_<random>`), and how to drop it (forcing out
 * what is still connected): the suites' databases and the bench's.
 */
export async function createFreshDatabase(baseUrl: string, prefix: string): Promise<FreshDatabase> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: baseUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export interface TestDatabase {
  /** Set CARDVAULT_DATABASE_URL to this (undefined on SQLite). */
  url: string | undefined;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (testStore === "sqlite") return { url: undefined, drop: async () => {} };
  const base = process.env.CARDVAULT_TEST_DATABASE_URL;
  if (!base) throw new Error("CARDVAULT_TEST_STORE=postgres needs CARDVAULT_TEST_DATABASE_URL");
  return createFreshDatabase(base, "cardvault_test");
}

/**
 * Readies a configuration's store and keys before openRuntime: migrates the database and writes the keystore
 * openRuntime would create, with cached RSA pairs (RSA-4096 keygen takes about a second a key).
 */
export async function prepareStoreAndKeys(config: Config, clock: Clock): Promise<void> {
  const migrating = connectStore(config);
  await ensureSchema(migrating.db, { migrate: true });
  await migrating.close();
  const masterKey = resolveMasterKey(config, () => {});
  initKeystore(keystorePath(config), masterKey, clock, { generateRsaKey: testRsaKeyGenerator });
  if (config.keyProvider === "pkcs11") {
    // The same keys, by the same ids, imported into the test's token: the suites' oracles (card-secrets.ts)
    // read the keystore file to compute what the service should answer; the service itself has only the token.
    const token = openToken(config.pkcs11!);
    try {
      for (const k of loadKeystore(keystorePath(config), masterKey)) {
        importSecretKey(
          token,
          { id: k.id, type: k.type, material: k.material, origin: k.origin, algorithm: k.algorithm },
          clock,
        );
      }
    } finally {
      token.close();
    }
  }
}
