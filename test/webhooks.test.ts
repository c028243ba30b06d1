// Webhooks end to end: endpoints through the API, deliveries queued with the events, and the sender posting
// to a real receiver on 127.0.0.1 that verifies every signature with the exported helper, fails the first
// attempts and sees the retries once the clock has moved.
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyWebhook } from "../src/client/verify-webhook.js";
import {
  createWebhookSender,
  type WebhookSender,
  type WebhookSenderDeps,
} from "../src/jobs/webhook-sender.js";
import { fixedClock } from "../src/lib/clock.js";
import { createLogger } from "../src/lib/logger.js";
import { createPublishers, webhookSenderDeps } from "../src/runtime.js";
import { createHarness, type Harness } from "./helpers/harness.js";
import { startReceiver } from "./helpers/webhook-receiver.js";

/** The data of an automatic rotation's card.cvv.changed event (events/catalog.ts), but the public token. */
const ROTATED = {
  last4: "0000",
  rotationType: "AUTOMATIC",
  operationType: "ROTATE_CVV",
  nextRotationAt: null,
  rotationIntervalHours: null,
} as const;

const clock = fixedClock("2026-11-28T12:00:00Z");
const logLines: string[] = [];
const logger = createLogger(
  "debug",
  new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  }) as unknown as NodeJS.WritableStream as never,
);
const secrets = new Map<string, string>();
const allResponses: string[] = [];

let h: Harness;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let senderDeps: WebhookSenderDeps;

async function call(...args: Parameters<Harness["call"]>) {
  // Tokens are minted on the test clock, so a fresh one follows the clock across days.
  const [method, url, body, init = {}] = args;
  const token = init.token === undefined ? await h.token() : init.token;
  const response = await h.call(method, url, body, { ...init, token });
  allResponses.push(response.body);
  return response;
}

async function createEndpoint(path: string, extra: Record<string, unknown> = {}, tenant = "acme") {
  const response = await call(
    "POST",
    "/v1/webhook-endpoints",
    { url: `${receiver.base}${path}`, ...extra },
    {
      token: await h.token(undefined, tenant),
    },
  );
  expect(response.statusCode, response.body).toBe(201);
  const created = response.json() as { id: string; secret: string; eventTypes: string[] | null; url: string };
  secrets.set(path, created.secret);
  return created;
}

/** One pass of a sender, waited out: the attempts it started, and those their ends started in turn. */
async function sendDue(sender: WebhookSender): Promise<number> {
  const started = await sender.runOnce();
  await sender.idle();
  return started;
}

async function deliveriesOf(endpointId: string) {
  const response = await call("GET", `/v1/webhook-endpoints/${endpointId}/deliveries`);
  expect(response.statusCode, response.body).toBe(200);
  return (response.json() as { items: Record<string, unknown>[] }).items;
}

beforeAll(async () => {
  h = await createHarness({ clock, logger, allowPrivateWebhooks: ["acme"] });
  receiver = await startReceiver(
    (path) => secrets.get(path),
    () => clock.now(),
  );
  // No name resolves in these tests unless a test maps it itself: a delivery can only reach 127.0.0.1.
  senderDeps = {
    ...webhookSenderDeps(h.runtime),
    timeoutMs: 300,
    logger,
    resolveHost: async () => {
      throw Object.assign(new Error("tests resolve no names"), { code: "ENOTFOUND" });
    },
  };
});
afterAll(async () => {
  await receiver.close();
  await h.close();
});

describe("webhook endpoints API", () => {
  it("creates an endpoint with a whsec_ secret shown once, then lists and reads it without the secret", async () => {
    const created = await createEndpoint("/api", { eventTypes: ["pin.changed"], description: "ops" });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(created.secret.slice(6), "base64")).toHaveLength(32);
    expect(created).toMatchObject({
      url: `${receiver.base}/api`,
      eventTypes: ["pin.changed"],
      description: "ops",
    });

    const one = await call("GET", `/v1/webhook-endpoints/${created.id}`);
    expect(one.statusCode).toBe(200);
    expect(one.json()).toEqual({
      id: created.id,
      url: created.url,
      description: "ops",
      eventTypes: ["pin.changed"],
      format: "cardvault",
      createdAt: clock.now().toISOString(),
      consecutiveFailures: 0,
      circuitOpenUntil: null,
    });
    const list = await call("GET", "/v1/webhook-endpoints");
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((e: { id: string }) => e.id)).toContain(created.id);
    expect(list.body).not.toContain("whsec_");
    expect(one.body).not.toContain("secret");

    const stored = await h.runtime.store.db
      .selectFrom("webhook_endpoints")
      .select("secret_sealed")
      .where("id", "=", created.id)
      .executeTakeFirstOrThrow();
    expect(stored.secret_sealed).toMatch(/^v1:webhook-secret-v1:/);
    expect(stored.secret_sealed).not.toContain(created.secret.slice(6, 20));
  });

  it("refuses bad input with a 400 problem and stores nothing", async () => {
    const before = (await call("GET", "/v1/webhook-endpoints?limit=100")).json().items.length;
    const cases: [unknown, string][] = [
      [{}, "url"],
      [{ url: "ftp://example.invalid/" }, "url"],
      [{ url: "not a url" }, "url"],
      [{ url: "https://user:pw@example.invalid/" }, "url"],
      [{ url: "https://example.invalid/", eventTypes: ["card.exploded"] }, "eventTypes"],
      [{ url: "https://example.invalid/", eventTypes: [] }, "eventTypes"],
      [{ url: "https://example.invalid/", secret: "whsec_mine" }, "secret"],
      [{ url: 42 }, "url"],
    ];
    for (const [body, field] of cases) {
      const response = await call("POST", "/v1/webhook-endpoints", body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.headers["content-type"]).toMatch(/application\/problem\+json/);
      expect(Object.keys(response.json().errors ?? {})).toContain(field);
    }
    expect((await call("GET", "/v1/webhook-endpoints/not-a-uuid")).statusCode).toBe(400);
    expect((await call("GET", "/v1/webhook-endpoints?cursor=%20")).statusCode).toBe(400);
    expect((await call("GET", "/v1/webhook-endpoints?limit=100")).json().items.length).toBe(before);
  });

  it("refuses a private address at creation for a tenant without the flag", async () => {
    const globex = await h.token(undefined, "globex");
    for (const url of [
      "http://127.0.0.1:9/x",
      "http://[::1]/x",
      "http://localhost:8080/x",
      "http://10.0.0.8/x",
    ]) {
      const response = await call("POST", "/v1/webhook-endpoints", { url }, { token: globex });
      expect(response.statusCode, url).toBe(400);
      expect(response.json().detail).toMatch(/internal address/);
    }
  });

  it("refuses the IANA special-purpose blocks at creation: local-use NAT64, Teredo, 6to4 relay (Hardening II)", async () => {
    const globex = await h.token(undefined, "globex");
    for (const url of [
      "http://[64:ff9b:1::a00:1]/x",
      "https://[2001::1]/x",
      "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x",
      "http://192.88.99.1/x",
      "http://[::ffff:192.88.99.2]/x",
      "http://[2002:c058:6301::1]/x",
    ]) {
      const response = await call("POST", "/v1/webhook-endpoints", { url }, { token: globex });
      expect(response.statusCode, url).toBe(400);
      expect(response.json().detail).toMatch(/internal address/);
    }
  });

  it("hides another tenant's endpoint (404) and needs the webhooks:manage scope (403)", async () => {
    const mine = await createEndpoint("/private-to-acme");
    const globex = await h.token(undefined, "globex");
    for (const [method, url] of [
      ["GET", `/v1/webhook-endpoints/${mine.id}`],
      ["DELETE", `/v1/webhook-endpoints/${mine.id}`],
      ["GET", `/v1/webhook-endpoints/${mine.id}/deliveries`],
    ] as const) {
      const response = await call(method, url, undefined, { token: globex });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
      expect(response.json().code).toBe("not_found");
    }
    expect((await call("GET", "/v1/webhook-endpoints", undefined, { token: globex })).json().items).toEqual(
      [],
    );
    const noScope = await h.token(["cards:read"]);
    expect((await call("GET", "/v1/webhook-endpoints", undefined, { token: noScope })).statusCode).toBe(403);
    expect((await call("GET", `/v1/webhook-endpoints/${mine.id}`)).statusCode).toBe(200);
    expect((await call("DELETE", `/v1/webhook-endpoints/${mine.id}`)).statusCode).toBe(204);
  });

  it("deletes an endpoint (204), after which it is gone and its pending deliveries are canceled", async () => {
    const doomed = await createEndpoint("/doomed", { eventTypes: ["card.created"] });
    await h.createCard(undefined, await h.token());
    expect((await deliveriesOf(doomed.id)).map((d) => d.status)).toEqual(["pending"]);
    const pendingId = (await deliveriesOf(doomed.id))[0]!.id as string;

    const deleted = await call("DELETE", `/v1/webhook-endpoints/${doomed.id}`);
    expect(deleted.statusCode).toBe(204);
    expect((await call("GET", `/v1/webhook-endpoints/${doomed.id}`)).statusCode).toBe(404);
    expect((await call("DELETE", `/v1/webhook-endpoints/${doomed.id}`)).statusCode).toBe(404);
    const row = await h.runtime.store.db
      .selectFrom("webhook_deliveries")
      .selectAll()
      .where("id", "=", pendingId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: "canceled", last_error: "endpoint_deleted" });
    const audit = await h.runtime.store.db
      .selectFrom("audit_events")
      .select("action")
      .where("action", "like", "webhook_endpoint.%")
      .execute();
    expect(audit.map((a) => a.action)).toContain("webhook_endpoint.delete");
  });
});

describe("delivery", () => {
  it("signs, fails, times out, retries on schedule and succeeds; filters by event type", async () => {
    await createEndpoint("/hook", { eventTypes: ["card.created", "card.status.changed"] });
    const pinOnly = await createEndpoint("/pin-only", { eventTypes: ["pin.changed"] });
    const hook = (await call("GET", "/v1/webhook-endpoints?limit=100"))
      .json()
      .items.find((e: { url: string }) => e.url === `${receiver.base}/hook`);
    const sender = createWebhookSender(senderDeps);
    await sendDue(sender); // drains what earlier tests queued
    receiver.received.length = 0;

    receiver.queue("/hook", "fail", "hang", "ok");
    const card = await h.createCard(undefined, await h.token());
    expect(await deliveriesOf(pinOnly.id)).toEqual([]);
    const [queued] = await deliveriesOf(hook.id);
    expect(queued).toMatchObject({ status: "pending", attempts: 0, eventType: "card.created" });

    // 1: the receiver answers 500.
    expect(await sendDue(sender)).toBe(1);
    let [d] = await deliveriesOf(hook.id);
    expect(d).toMatchObject({ status: "pending", attempts: 1, lastStatusCode: 500 });
    expect(d!.lastError).toMatch(/^http_500/);
    expect(d!.nextAttemptAt).toBe(new Date(clock.now().getTime() + 5_000).toISOString());
    expect(await sendDue(sender)).toBe(0); // not due yet

    // 2: five seconds later, the receiver never answers: the attempt times out.
    clock.advance(5_000);
    expect(await sendDue(sender)).toBe(1);
    [d] = await deliveriesOf(hook.id);
    expect(d).toMatchObject({ status: "pending", attempts: 2, lastStatusCode: null });
    expect(d!.lastError).toMatch(/^timeout/);
    expect(d!.nextAttemptAt).toBe(new Date(clock.now().getTime() + 5 * 60_000).toISOString());

    // 3: five minutes later it is accepted.
    clock.advance(5 * 60_000);
    expect(await sendDue(sender)).toBe(1);
    [d] = await deliveriesOf(hook.id);
    expect(d).toMatchObject({
      status: "succeeded",
      attempts: 3,
      lastStatusCode: 204,
      lastError: null,
      nextAttemptAt: null,
    });
    expect(await sendDue(sender)).toBe(0);

    const attempts = receiver.received.filter((r) => r.path === "/hook");
    expect(attempts).toHaveLength(3);
    for (const attempt of attempts) {
      expect(attempt.verifyError).toBeUndefined();
      expect(attempt.headers["webhook-id"]).toBe(queued!.eventId);
      expect(attempt.headers["content-type"]).toBe("application/json");
      expect(attempt.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      expect(attempt.verified).toMatchObject({
        id: queued!.eventId,
        type: "card.created",
        data: { publicToken: card.publicToken },
      });
    }
    // Each attempt is signed at its own time.
    expect(new Set(attempts.map((a) => a.headers["webhook-timestamp"])).size).toBe(3);
    expect(receiver.received.filter((r) => r.path === "/pin-only")).toEqual([]);

    // A tampered body does not verify with the helper.
    const tampered = attempts[0]!.body.replace("card.created", "card.closed");
    expect(() =>
      verifyWebhook(tampered, attempts[0]!.headers, secrets.get("/hook")!, { now: () => clock.now() }),
    ).toThrow();
    expect((await call("DELETE", `/v1/webhook-endpoints/${hook.id}`)).statusCode).toBe(204);
  });

  it("keeps retrying for more than 24 hours, then marks the delivery failed", async () => {
    const endpoint = await createEndpoint("/always-fail", { eventTypes: ["card.status.changed"] });
    const sender = createWebhookSender(senderDeps);
    const card = await h.createCard(undefined, await h.token());
    await sendDue(sender);
    const start = clock.now().getTime();
    const patch = await call("PATCH", `/v1/cards/${card.publicToken}`, { status: "suspended" });
    expect(patch.statusCode).toBe(200);

    let attempts = 0;
    for (let i = 0; i < 20; i++) {
      attempts += await sendDue(sender);
      const [d] = await deliveriesOf(endpoint.id);
      if (d!.status !== "pending") break;
      clock.set(d!.nextAttemptAt as string);
    }
    const [d] = await deliveriesOf(endpoint.id);
    expect(d).toMatchObject({ status: "failed", attempts: 8, lastStatusCode: 500, nextAttemptAt: null });
    expect(attempts).toBe(8);
    expect(Date.parse(d!.lastAttemptAt as string) - start).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(receiver.received.filter((r) => r.path === "/always-fail")).toHaveLength(8);
  });

  it("refuses at delivery time a name that resolves to a private address, for a tenant without the flag", async () => {
    const globex = await h.token(undefined, "globex");
    const response = await call(
      "POST",
      "/v1/webhook-endpoints",
      { url: "http://hooks.example.test/rebound", eventTypes: ["card.created"] },
      { token: globex },
    );
    expect(response.statusCode, response.body).toBe(201);
    const endpoint = response.json() as { id: string };
    // The name looked public at creation; at delivery it resolves to loopback (DNS rebinding).
    const sender = createWebhookSender({
      ...senderDeps,
      resolveHost: async () => [{ address: "127.0.0.1", family: 4 }],
    });
    await h.createCard(undefined, globex);
    const before = receiver.received.length;
    expect(await sendDue(sender)).toBe(1);
    expect(receiver.received.length).toBe(before);
    const deliveries = (
      await call("GET", `/v1/webhook-endpoints/${endpoint.id}/deliveries`, undefined, { token: globex })
    ).json().items;
    expect(deliveries[0]).toMatchObject({ status: "failed", lastStatusCode: null, nextAttemptAt: null });
    expect(deliveries[0].lastError).toMatch(
      /^blocked_address: hooks\.example\.test resolves to a loopback address/,
    );
  });

  it("refuses at delivery time a name that resolves to a Teredo or local-use NAT64 address (Hardening II)", async () => {
    const globex = await h.token(undefined, "globex");
    const created = [];
    for (const name of ["teredo.example.test", "nat64.example.test"]) {
      const response = await call(
        "POST",
        "/v1/webhook-endpoints",
        { url: `https://${name}/hook`, eventTypes: ["card.created"] },
        { token: globex },
      );
      expect(response.statusCode, response.body).toBe(201);
      created.push(response.json() as { id: string });
    }
    const sender = createWebhookSender({
      ...senderDeps,
      resolveHost: async (host) =>
        host.startsWith("teredo")
          ? [{ address: "2001:0:4136:e378:8000:63bf:3fff:fdd2", family: 6 }]
          : [{ address: "64:ff9b:1::a00:1", family: 6 }],
    });
    await h.createCard(undefined, globex);
    await sendDue(sender);
    const errors = [];
    for (const endpoint of created) {
      const items = (
        await call("GET", `/v1/webhook-endpoints/${endpoint.id}/deliveries`, undefined, { token: globex })
      ).json().items;
      expect(items[0]).toMatchObject({ status: "failed", lastStatusCode: null });
      errors.push(items[0].lastError);
    }
    expect(errors).toEqual([
      expect.stringMatching(/^blocked_address: teredo\.example\.test resolves to a Teredo address/),
      expect.stringMatching(/^blocked_address: nat64\.example\.test resolves to a local-use NAT64 address/),
    ]);
    for (const endpoint of created) {
      expect(
        (await call("DELETE", `/v1/webhook-endpoints/${endpoint.id}`, undefined, { token: globex }))
          .statusCode,
      ).toBe(204);
    }
  });

  it("connects to the address it checked, whatever the name resolves to later", async () => {
    const endpoint = await createEndpoint("/pinned", { eventTypes: ["card.created"] });
    // acme may use private addresses: the unknown name is pinned to the receiver's address.
    await h.runtime.store.db
      .updateTable("webhook_endpoints")
      .set({ url: `http://receiver.example.test:${new URL(receiver.base).port}/pinned` })
      .where("id", "=", endpoint.id)
      .execute();
    const resolved: string[] = [];
    const sender = createWebhookSender({
      ...senderDeps,
      resolveHost: async (host) => {
        resolved.push(host);
        return [{ address: "127.0.0.1", family: 4 }];
      },
    });
    await h.createCard(undefined, await h.token());
    await sendDue(sender);
    expect(resolved).toContain("receiver.example.test");
    const hit = receiver.received.filter((r) => r.path === "/pinned");
    expect(hit).toHaveLength(1);
    expect(hit[0]!.headers.host).toBe(`receiver.example.test:${new URL(receiver.base).port}`);
    expect(hit[0]!.verifyError).toBeUndefined();
  });

  it("sends each due delivery once even with two senders at the same time", async () => {
    const endpoint = await createEndpoint("/concurrent", { eventTypes: ["card.cvv.changed"] });
    await sendDue(createWebhookSender(senderDeps));
    const events = Array.from({ length: 45 }, (_, i) => ({
      tenantId: "acme",
      cardId: `card-${i}`,
      type: "card.cvv.changed" as const,
      occurredAt: h.runtime.clock.now(),
      data: { publicToken: `10000000${i}`, ...ROTATED },
    }));
    await h.runtime.store.transaction((tx) =>
      createPublishers(h.runtime.repos, h.runtime.clock).publishMany(tx, events),
    );
    const a = createWebhookSender({ ...senderDeps, concurrency: 7 });
    const b = createWebhookSender({ ...senderDeps, concurrency: 7 });
    await Promise.all([sendDue(a), sendDue(b)]);
    const ids = receiver.received.filter((r) => r.path === "/concurrent").map((r) => r.headers["webhook-id"]);
    expect(ids).toHaveLength(45);
    expect(new Set(ids).size).toBe(45);
    const page1 = (await call("GET", `/v1/webhook-endpoints/${endpoint.id}/deliveries?limit=40`)).json();
    expect(page1.items).toHaveLength(40);
    const page2 = (
      await call("GET", `/v1/webhook-endpoints/${endpoint.id}/deliveries?limit=40&cursor=${page1.nextCursor}`)
    ).json();
    expect(page2).toMatchObject({ nextCursor: null });
    // Listed when one is not: its lastError says why.
    expect(
      [...page1.items, ...page2.items].filter((d: { status: string }) => d.status !== "succeeded"),
    ).toEqual([]);
  });
});

describe("batch publishing", () => {
  it("queues thousands of events and their deliveries in one transaction, matching each endpoint's filter", async () => {
    const wanted = await createEndpoint("/batch", { eventTypes: ["card.cvv.changed"] });
    const other = await createEndpoint("/batch-other", { eventTypes: ["pin.blocked"] });
    const globexToken = await h.token(undefined, "globex");
    const globexAll = (
      await call(
        "POST",
        "/v1/webhook-endpoints",
        { url: "https://hooks.example.invalid/all" },
        { token: globexToken },
      )
    ).json() as { id: string };
    const countFor = async (endpointId: string) =>
      Number(
        (
          await h.runtime.store.db
            .selectFrom("webhook_deliveries")
            .select((eb) => eb.fn.countAll().as("n"))
            .where("endpoint_id", "=", endpointId)
            .executeTakeFirstOrThrow()
        ).n,
      );
    const events = Array.from({ length: 3000 }, (_, i) => ({
      tenantId: i % 3 === 0 ? "globex" : "acme",
      cardId: `card-${i}`,
      type: "card.cvv.changed" as const,
      occurredAt: h.runtime.clock.now(),
      data: { publicToken: String(200000000 + i), ...ROTATED },
    }));
    const started = performance.now();
    await h.runtime.store.transaction((tx) =>
      createPublishers(h.runtime.repos, h.runtime.clock).publishMany(tx, events),
    );
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(await countFor(wanted.id)).toBe(2000);
    expect(await countFor(other.id)).toBe(0);
    expect(await countFor(globexAll.id)).toBe(1000);

    // Nothing is queued when the transaction rolls back.
    await expect(
      h.runtime.store.transaction(async (tx) => {
        await createPublishers(h.runtime.repos, h.runtime.clock).publishMany(tx, events.slice(0, 10));
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    expect(await countFor(wanted.id)).toBe(2000);
    await call("DELETE", `/v1/webhook-endpoints/${wanted.id}`);
  });
});

describe("secrecy", () => {
  it("never puts a webhook secret in a log line, audit record, event, stored row or other response", async () => {
    expect(secrets.size).toBeGreaterThan(3);
    const db = h.runtime.store.db;
    const texts = [
      ...logLines,
      JSON.stringify(await db.selectFrom("audit_events").selectAll().execute()),
      JSON.stringify(await db.selectFrom("outbox_events").selectAll().execute()),
      JSON.stringify(await db.selectFrom("webhook_deliveries").selectAll().execute()),
      JSON.stringify(await db.selectFrom("webhook_endpoints").selectAll().execute()),
      JSON.stringify(await db.selectFrom("idempotency_keys").selectAll().execute()),
      ...allResponses.filter((body) => !body.includes('"secret":"whsec_')),
    ];
    expect(logLines.some((l) => l.includes("webhook attempt"))).toBe(true);
    for (const secret of secrets.values()) {
      const core = secret.slice(6);
      for (const text of texts) expect(text).not.toContain(core);
    }
    // Exactly one response per endpoint ever carried its secret: the creation's.
    for (const secret of secrets.values()) {
      expect(allResponses.filter((body) => body.includes(secret))).toHaveLength(1);
    }
  });
});
