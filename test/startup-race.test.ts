// Several `serve` processes started at once on one fresh data directory: exactly one development master key,
// JWT secret and keystore come out of the race, every process uses them (a card created through one reads
// through every other), and the directory and its files are private (0700 / 0600) under a permissive umask.
// Also the upgrade race: an older development keystore that lacks key types, gaining them in four processes.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { mintToken, scopes } from "../src/http/auth.js";
import { initKeystore } from "../src/keys/keystore-file.js";
import { systemClock } from "../src/lib/clock.js";
import { connectStore, keystorePath, resolveMasterKey } from "../src/runtime.js";
import { createTenantService } from "../src/services/tenants.js";
import { ensureSchema } from "../src/store/db.js";
import { createTenantRepo } from "../src/store/tenant-repo.js";
import { type CardvaultProcess, freePort, spawnCardvault } from "./helpers/processes.js";
import { createTestDatabase, type TestDatabase } from "./helpers/test-database.js";
import { testRsaKeyGenerator } from "./helpers/test-rsa-keys.js";

const PROCESSES = 3;

let parent: string | undefined;
let database: TestDatabase | undefined;
let servers: { process: CardvaultProcess; base: string }[] = [];

afterEach(async () => {
  for (const s of servers) s.process.child.kill("SIGTERM");
  await Promise.all(servers.map((s) => s.process.exited));
  servers = [];
  await database?.drop();
  database = undefined;
  if (parent) rmSync(parent, { recursive: true, force: true });
  parent = undefined;
});

/**
 * A data directory without keys or secrets (on PostgreSQL it does not exist yet; on SQLite it holds just the
 * migrated database), and the database the processes share.
 */
async function freshWorld() {
  parent = mkdtempSync(join(tmpdir(), "cardvault-race-"));
  const dataDir = join(parent, "data");
  database = await createTestDatabase();
  const env: Record<string, string> = {
    CARDVAULT_DATA_DIR: dataDir,
    CARDVAULT_MASTER_KEY: "",
    CARDVAULT_JWT_SECRET: "",
    CARDVAULT_JOBS: "off",
    CARDVAULT_DATABASE_URL: database.url ?? "",
  };
  // Migrated first, as `cardvault migrate` does before PostgreSQL is served. On SQLite that puts the database
  // (only) in the data directory: processes that each migrate one fresh SQLite file at the same moment race on
  // CREATE TABLE, a different matter from the keys tested here.
  const store = connectStore(
    loadConfig(database.url ? { ...env, CARDVAULT_DATA_DIR: join(parent, "migrate") } : env),
  );
  await ensureSchema(store.db, { migrate: true });
  await store.close();
  return { dataDir, env };
}

/** Starts the processes in one go (no awaiting between spawns) and waits until each answers /readyz. */
async function startAll(env: Record<string, string>): Promise<void> {
  const ports = await Promise.all(Array.from({ length: PROCESSES }, () => freePort()));
  servers = ports.map((port) => ({
    process: spawnCardvault(["serve", "--port", String(port)], env, { umask: 0o000 }),
    base: `http://127.0.0.1:${port}`,
  }));
  await Promise.all(servers.map((s) => ready(s)));
}

async function ready(server: { process: CardvaultProcess; base: string }): Promise<void> {
  let exited: number | string | undefined;
  void server.process.exited.then((code) => {
    exited = code;
  });
  // Three processes from the sources generating keys at once, beside another test file: correctness, not speed.
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`serve exited (${exited}): ${server.process.output()}`);
    const ok = await fetch(`${server.base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${server.base} did not come up: ${server.process.output()}`);
}

/** A card created through each process reads (and gives the same CVV) through every process. */
async function expectSharedKeys(dataDir: string, env: Record<string, string>): Promise<void> {
  const store = connectStore(loadConfig(env));
  await createTenantService({ tenants: createTenantRepo(store.db), clock: systemClock }).add({ id: "acme" });
  await store.close();
  const token = await mintToken({
    secret: readFileSync(join(dataDir, "dev-jwt-secret"), "utf8").trim(),
    tenantId: "acme",
    scopes: [...scopes],
    subject: "race",
    ttlSeconds: 600,
    tenantClaim: "tenant",
    clock: systemClock,
  });
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  for (const creator of servers) {
    const created = await fetch(`${creator.base}/v1/cards`, {
      method: "POST",
      headers,
      body: JSON.stringify({ type: "virtual" }),
    });
    expect(created.status).toBe(201);
    const { publicToken } = (await created.json()) as { publicToken: string };
    const reads = await Promise.all(
      servers.map(async (reader) => {
        const response = await fetch(`${reader.base}/v1/cards/${publicToken}/cvv`, { headers });
        return { status: response.status, body: (await response.json()) as { cvv?: string } };
      }),
    );
    expect(reads.map((r) => r.status)).toEqual(servers.map(() => 200));
    expect(new Set(reads.map((r) => r.body.cvv)).size).toBe(1);
  }
}

/** One of each file, nothing left over (no temporary files), the directory 0700 and every file 0600. */
function expectOnePrivateSet(dataDir: string): void {
  const sqlite = database?.url ? [] : ["cardvault.db", "cardvault.db-shm", "cardvault.db-wal"];
  expect(readdirSync(dataDir).sort()).toEqual(
    [...sqlite, "dev-jwt-secret", "dev-master.key", "keystore.json", "keystore.json.lock"].sort(),
  );
  expect((statSync(dataDir).mode & 0o777).toString(8)).toBe("700");
  for (const name of readdirSync(dataDir)) {
    expect([name, (statSync(join(dataDir, name)).mode & 0o777).toString(8)]).toEqual([name, "600"]);
  }
}

describe(`${PROCESSES} serve processes started at once`, () => {
  it("on a fresh data directory create one master key, JWT secret and keystore, and all use them", async () => {
    const { dataDir, env } = await freshWorld();
    await startAll(env);
    await expectSharedKeys(dataDir, env);
    expectOnePrivateSet(dataDir);
  }, 120_000);

  it("on an older development keystore lacking key types add them once, and all use the same", async () => {
    const { dataDir, env } = await freshWorld();
    const config = loadConfig(env);
    initKeystore(
      keystorePath(config),
      resolveMasterKey(config, () => {}),
      systemClock,
      {
        generateRsaKey: testRsaKeyGenerator,
      },
    );
    // As a build before pan-data and secure-data-wrap existed would have left it: the processes generate them
    // (an RSA-4096 key among them, a second or so) while the others start.
    const file = keystorePath(config);
    const older = JSON.parse(readFileSync(file, "utf8")) as { keys: { type: string }[] };
    older.keys = older.keys.filter((k) => k.type !== "pan-data" && k.type !== "secure-data-wrap");
    writeFileSync(file, JSON.stringify(older), { mode: 0o600 });
    await startAll(env);
    const keys = (JSON.parse(readFileSync(file, "utf8")) as { keys: { id: string }[] }).keys.map((k) => k.id);
    expect(keys.filter((id) => id === "pan-data-v1" || id === "secure-data-wrap-v1").sort()).toEqual([
      "pan-data-v1",
      "secure-data-wrap-v1",
    ]);
    expect(keys).not.toContain("pan-data-v2");
    await expectSharedKeys(dataDir, env);
  }, 120_000);
});
