// Several cardvault processes on one PostgreSQL database: try counters, rotations, idempotency keys and webhook
// deliveries hold across processes, also when one of them is killed mid-work.

import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { mintToken, scopes } from "../../src/http/auth.js";
import { systemClock } from "../../src/lib/clock.js";
import { createPublishers, openRuntime, type Runtime } from "../../src/runtime.js";
import {
  type CardvaultProcess,
  freePort,
  spawnCardvault,
  waitForHttp,
  waitForOutput,
} from "../helpers/processes.js";
import { createTestDatabase, prepareStoreAndKeys, type TestDatabase } from "../helpers/test-database.js";

const SECRET = "multi-process-secret-that-is-long-enough!";
const MASTER = "11".repeat(32);
let database: TestDatabase;
let dataDir: string;
let env: Record<string, string>;
let runtime: Runtime;
let token: string;
const servers: { process: CardvaultProcess; base: string }[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = mkdtempSync(join(tmpdir(), "cardvault-mp-"));
  env = {
    CARDVAULT_DATABASE_URL: database.url!,
    CARDVAULT_DATA_DIR: dataDir,
    CARDVAULT_JWT_SECRET: SECRET,
    CARDVAULT_MASTER_KEY: MASTER,
    CARDVAULT_JOBS: "off",
  };
  const config = loadConfig(env);
  // Migrated, and the keystore written with the cached RSA test pairs (the serve processes find it there):
  // openRuntime would otherwise generate RSA-4096 and RSA-3072 keys in this process first.
  await prepareStoreAndKeys(config, systemClock);
  runtime = await openRuntime(config, { warn: () => {} });
  await runtime.services.tenants.add({ id: "acme", sandbox: true, maxCvvTries: 3, maxPinTries: 3 });
  token = await mintToken({
    secret: SECRET,
    tenantId: "acme",
    scopes: [...scopes],
    subject: "mp",
    ttlSeconds: 3600,
    tenantClaim: "tenant",
    clock: systemClock,
  });
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const process = spawnCardvault(["serve", "--port", String(port)], env);
    servers.push({ process, base: `http://127.0.0.1:${port}` });
  }
  await Promise.all(servers.map((s) => waitForHttp(`${s.base}/readyz`)));
}, 60_000);

afterAll(async () => {
  for (const s of servers) s.process.child.kill("SIGTERM");
  await Promise.all(servers.map((s) => s.process.exited));
  await runtime?.close();
  await database?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

const headers = () => ({ authorization: `Bearer ${token}`, "content-type": "application/json" });

async function post(base: string, path: string, body: unknown, extra: Record<string, string> = {}) {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { ...headers(), ...extra },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json().catch(() => null)) as Record<string, unknown>,
  };
}

async function createCard(body: object = { type: "virtual" }) {
  const created = await post(servers[0]!.base, "/v1/cards", body);
  expect(created.status).toBe(201);
  return created.body.publicToken as string;
}

describe("three serve processes on one PostgreSQL database", () => {
  it("60 concurrent wrong CVV verifications across them count exactly 3", async () => {
    const t = await createCard();
    const cvv = (
      (await (await fetch(`${servers[1]!.base}/v1/cards/${t}/cvv`, { headers: headers() })).json()) as {
        cvv: string;
      }
    ).cvv;
    const wrong = String((Number(cvv) + 1) % 1000).padStart(3, "0");
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        post(servers[i % 3]!.base, `/v1/cards/${t}/cvv/verify`, { cvv: wrong }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.body.result === "mismatch")).toHaveLength(3);
    expect(results.filter((r) => r.body.result === "blocked")).toHaveLength(57);
    const status = await (
      await fetch(`${servers[2]!.base}/v1/cards/${t}/cvv/status`, { headers: headers() })
    ).json();
    expect(status).toEqual({ status: "Blocked", remainingTries: 0, maxTries: 3 });
  });

  it("the same for the PIN", async () => {
    const t = await createCard();
    await fetch(`${servers[0]!.base}/v1/cards/${t}/pin`, {
      method: "PUT",
      headers: headers(),
      body: JSON.stringify({ pin: "2468" }),
    });
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        post(servers[i % 3]!.base, `/v1/cards/${t}/pin/verify`, { pin: "1357" }),
      ),
    );
    expect(results.filter((r) => r.body.result === "mismatch")).toHaveLength(3);
    expect(results.filter((r) => r.body.result === "blocked")).toHaveLength(57);
  });

  it("the same Idempotency-Key sent to all three at once creates one card", async () => {
    const before = Number(
      (
        await runtime.store.db
          .selectFrom("cards")
          .select((eb) => eb.fn.countAll().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );
    const key = { "idempotency-key": `mp-${Date.now()}` };
    const results = await Promise.all(
      servers.map((s) => post(s.base, "/v1/cards", { type: "virtual" }, key)),
    );
    const created = results.filter((r) => r.status === 201);
    expect(new Set(created.map((r) => r.body.publicToken)).size).toBe(1);
    expect(results.every((r) => r.status === 201 || r.status === 409)).toBe(true);
    const after = Number(
      (
        await runtime.store.db
          .selectFrom("cards")
          .select((eb) => eb.fn.countAll().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );
    expect(after).toBe(before + 1);
  });
});

describe("three workers on one test clock", () => {
  it("2,000 due cards rotate exactly once each, also when a worker is killed mid-run and restarted", async () => {
    const clock = await post(servers[0]!.base, "/v1/test-clocks", { frozenTime: "2026-03-01T15:00:00Z" });
    const clockId = clock.body.id as string;
    const actor = { tenantId: "acme", subject: "mp" };
    const tokens: string[] = [];
    for (let i = 0; i < 2000; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, () =>
          runtime.services.cards.create(actor, {
            type: "virtual",
            cvvRotationIntervalHours: 24,
            testClockId: clockId,
          }),
        ),
      );
      tokens.push(...batch.map((c) => c.publicToken));
    }
    // Move the clock directly so the workers, not the advance request, do the rotations.
    await runtime.repos.testClocks.advance(clockId, "2026-03-02T15:00:00.000Z");
    // Info level: the "worker running" line tells when a worker is up.
    const workerEnv = {
      ...env,
      CARDVAULT_JOBS: "on",
      CARDVAULT_JOB_INTERVAL_MS: "20",
      CARDVAULT_LOG_LEVEL: "info",
    };
    const workers = [0, 1, 2].map(() => spawnCardvault(["worker"], workerEnv));

    const remaining = async () =>
      Number(
        (
          await runtime.store.db
            .selectFrom("cards")
            .select((eb) => eb.fn.countAll().as("n"))
            .where("test_clock_id", "=", clockId)
            .where("next_rotation_at", "<=", "2026-03-02T15:00:00.000Z")
            .executeTakeFirstOrThrow()
        ).n,
      );
    // Kill one worker as soon as the work has started.
    for (let i = 0; i < 400 && (await remaining()) === 2000; i++) await new Promise((r) => setTimeout(r, 25));
    workers[0]!.child.kill("SIGKILL");
    expect(await workers[0]!.exited).toBe("SIGKILL");
    workers[0] = spawnCardvault(["worker"], workerEnv);

    const deadline = Date.now() + 60_000;
    while ((await remaining()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await remaining()).toBe(0);
    await Promise.all(workers.map((w) => waitForOutput(w, "cardvault worker running")));
    for (const w of workers) w.child.kill("SIGTERM");
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0, 0]);

    const events = await runtime.store.db
      .selectFrom("outbox_events")
      .select(["payload"])
      .where("type", "=", "card.cvv.changed")
      .execute();
    const perCard = new Map<string, number>();
    for (const e of events) {
      const data = JSON.parse(e.payload).data as { publicToken: string; rotationType: string };
      if (data.rotationType === "AUTOMATIC")
        perCard.set(data.publicToken, (perCard.get(data.publicToken) ?? 0) + 1);
    }
    expect(tokens.filter((t) => perCard.get(t) !== 1)).toEqual([]);
    expect(perCard.size).toBe(2000);
  }, 120_000);
});

describe("three workers sending webhooks", () => {
  it("deliver each of 350 deliveries of two tenants exactly once (Hardening II: fair claims across processes)", async () => {
    const received: string[] = [];
    const receiver = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        received.push(`${req.url} ${req.headers["webhook-id"]}`);
        // A little latency, so that the workers' attempts overlap.
        setTimeout(() => {
          res.statusCode = 204;
          res.end();
        }, 5);
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const plan = { "hooks-a": { endpoints: 3, events: 100 }, "hooks-b": { endpoints: 1, events: 50 } };
    for (const [tenantId, { endpoints, events }] of Object.entries(plan)) {
      await runtime.services.tenants.add({ id: tenantId, allowPrivateWebhooks: true });
      const actor = { tenantId, subject: "mp" };
      for (let i = 0; i < endpoints; i++) {
        await runtime.services.webhooks.create(actor, {
          url: `${base}/${tenantId}/${i}`,
          eventTypes: ["pin.changed"],
        });
      }
      const published = Array.from({ length: events }, (_, i) => ({
        tenantId,
        cardId: `card-${i}`,
        type: "pin.changed" as const,
        occurredAt: runtime.clock.now(),
        data: { publicToken: String(400000000 + i) },
      }));
      await runtime.store.transaction((tx) =>
        createPublishers(runtime.repos, runtime.clock).publishMany(tx, published),
      );
    }
    const workerEnv = { ...env, CARDVAULT_JOBS: "on", CARDVAULT_JOB_INTERVAL_MS: "20" };
    const workers = [0, 1, 2].map(() => spawnCardvault(["worker"], workerEnv));
    const unfinished = async () =>
      Number(
        (
          await runtime.store.db
            .selectFrom("webhook_deliveries")
            .select((eb) => eb.fn.countAll().as("n"))
            .where("tenant_id", "in", Object.keys(plan))
            .where("status", "!=", "succeeded")
            .executeTakeFirstOrThrow()
        ).n,
      );
    const deadline = Date.now() + 60_000;
    while ((await unfinished()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const w of workers) w.child.kill("SIGTERM");
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0, 0]);
    receiver.close();
    expect(await unfinished()).toBe(0);
    expect(received).toHaveLength(350);
    expect(new Set(received).size).toBe(350);
  }, 120_000);
});
