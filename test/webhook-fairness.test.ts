// Hardening II, item 7: one tenant's webhook endpoints cannot hold back another tenant's deliveries. Every
// receiver is a real listener on 127.0.0.1 that the test starts: one that accepts and never answers, one that
// answers at once, one whose accept queue is full (it never completes a TCP handshake). The sender runs under
// the real job runner; both stores.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startJobs } from "../src/jobs/runner.js";
import { createWebhookSender, type WebhookSender } from "../src/jobs/webhook-sender.js";
import { fixedClock } from "../src/lib/clock.js";
import { createLogger } from "../src/lib/logger.js";
import { createPublishers, webhookSenderDeps } from "../src/runtime.js";
import { createHarness, type Harness } from "./helpers/harness.js";

/** The data of an automatic rotation's card.cvv.changed event (events/catalog.ts), but the public token. */
const ROTATED = {
  last4: "0000",
  rotationType: "AUTOMATIC",
  operationType: "ROTATE_CVV",
  nextRotationAt: null,
  rotationIntervalHours: null,
} as const;

const clock = fixedClock("2026-11-28T12:00:00Z");
const ENDPOINT_CAP = 40;
/** The response timeout of the flood test's sender: what a FIFO waits per batch on the hanging endpoints. */
const TIMEOUT_MS = 2_000;
let h: Harness;

beforeAll(async () => {
  h = await createHarness({
    clock,
    allowPrivateWebhooks: ["acme", "globex"],
    env: { CARDVAULT_WEBHOOK_ENDPOINTS_PER_TENANT: String(ENDPOINT_CAP) },
  });
});
afterAll(async () => {
  await h.close();
});

/** A listener on 127.0.0.1: `answer` decides per request (call res.end, or never answer). */
async function listen(answer: Parameters<typeof createServer>[1]) {
  const server: Server = createServer(answer);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    server,
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

async function createEndpoint(tenant: string, url: string, extra: Record<string, unknown> = {}) {
  return h.call(
    "POST",
    "/v1/webhook-endpoints",
    { url, ...extra },
    { token: await h.token(undefined, tenant) },
  );
}

async function deleteEndpoints(tenant: string) {
  const token = await h.token(undefined, tenant);
  const items = (await h.call("GET", "/v1/webhook-endpoints?limit=100", undefined, { token })).json().items;
  for (const { id } of items as { id: string }[]) {
    expect((await h.call("DELETE", `/v1/webhook-endpoints/${id}`, undefined, { token })).statusCode).toBe(
      204,
    );
  }
}

/** `count` events of one tenant, each delivered to every endpoint of it that takes card.cvv.changed. */
async function publish(tenantId: string, count: number) {
  const events = Array.from({ length: count }, (_, i) => ({
    tenantId,
    cardId: `card-${i}`,
    type: "card.cvv.changed" as const,
    occurredAt: h.runtime.clock.now(),
    data: { publicToken: String(300000000 + i), ...ROTATED },
  }));
  await h.runtime.store.transaction((tx) =>
    createPublishers(h.runtime.repos, h.runtime.clock).publishMany(tx, events),
  );
}

async function deliveriesOf(tenant: string, endpointId: string) {
  const token = await h.token(undefined, tenant);
  const response = await h.call(
    "GET",
    `/v1/webhook-endpoints/${endpointId}/deliveries?limit=100`,
    undefined,
    {
      token,
    },
  );
  expect(response.statusCode, response.body).toBe(200);
  return response.json().items as Record<string, unknown>[];
}

/** Polls until `done()` or the deadline; the time it took, or Infinity. */
async function timeUntil(done: () => boolean, deadlineMs: number): Promise<number> {
  const started = performance.now();
  while (!done()) {
    if (performance.now() - started > deadlineMs) return Number.POSITIVE_INFINITY;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - started;
}

async function sendDue(sender: WebhookSender): Promise<void> {
  await sender.runOnce();
  await sender.idle();
}

const noNames = async () => {
  throw Object.assign(new Error("tests resolve no names"), { code: "ENOTFOUND" });
};

describe("endpoint cap (Hardening II)", () => {
  it("refuses an endpoint past the tenant's cap with 409, also under concurrent creations; other tenants are not counted", async () => {
    const url = "https://hooks.example.invalid/capped";
    // Five more creations at once than the cap allows: exactly the cap gets through.
    const answers = await Promise.all(
      Array.from({ length: ENDPOINT_CAP + 5 }, () => createEndpoint("acme", url)),
    );
    const statuses = answers.map((a) => a.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(ENDPOINT_CAP);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
    const refused = answers.find((a) => a.statusCode === 409)!;
    expect(refused.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(refused.json()).toMatchObject({ code: "webhook_endpoint_limit", status: 409 });
    expect(refused.json().detail).toContain(`${ENDPOINT_CAP} webhook endpoints`);

    const acme = await h.token();
    const list = (await h.call("GET", "/v1/webhook-endpoints?limit=100", undefined, { token: acme })).json();
    expect(list.items).toHaveLength(ENDPOINT_CAP);
    // Another tenant has its own count.
    expect((await createEndpoint("globex", url)).statusCode).toBe(201);
    // Deleting one frees its place, once.
    const first = list.items[0].id as string;
    expect(
      (await h.call("DELETE", `/v1/webhook-endpoints/${first}`, undefined, { token: acme })).statusCode,
    ).toBe(204);
    expect((await createEndpoint("acme", url)).statusCode).toBe(201);
    expect((await createEndpoint("acme", url)).statusCode).toBe(409);

    await deleteEndpoints("acme");
    await deleteEndpoints("globex");
  });
});

describe("fairness under a flood (Hardening II)", () => {
  it("delivers another tenant's event as promptly while one tenant's 30 endpoints hang on a backlog of 120", async () => {
    // Tenant acme's receiver accepts every connection and never answers.
    const hanging = new Set<Socket>();
    const hang = await listen((req) => {
      hanging.add(req.socket);
      req.resume();
    });
    // Tenant globex's receiver answers at once; the test notes when each event arrives.
    const arrived: string[] = [];
    const fast = await listen((req, res) => {
      req.resume();
      req.on("end", () => {
        arrived.push(String(req.headers["webhook-id"]));
        res.statusCode = 204;
        res.end();
      });
    });
    const types = { eventTypes: ["card.cvv.changed"] };
    for (let i = 0; i < 30; i++) {
      expect((await createEndpoint("acme", `${hang.base}/a/${i}`, types)).statusCode).toBe(201);
    }
    expect((await createEndpoint("globex", `${fast.base}/b`, types)).statusCode).toBe(201);

    const sender = createWebhookSender({
      ...webhookSenderDeps(h.runtime),
      timeoutMs: TIMEOUT_MS,
      connectTimeoutMs: 500,
      resolveHost: noNames,
    });
    const jobs = startJobs([sender], createLogger("silent"), 50);
    try {
      // Unloaded: the time globex's event takes on its own.
      await publish("globex", 1);
      const alone = await timeUntil(() => arrived.length === 1, 3 * TIMEOUT_MS);
      expect(alone).toBeLessThan(TIMEOUT_MS / 4);

      // The flood: 4 events × 30 hanging endpoints queued before globex's next event. A single FIFO in
      // batches of 20 reaches it after 6 response timeouts.
      clock.advance(1_000);
      await publish("acme", 4);
      clock.advance(1);
      await publish("globex", 1);
      const flooded = await timeUntil(() => arrived.length === 2, 3 * TIMEOUT_MS);

      // And one published while acme's attempts are hanging in flight.
      await timeUntil(() => hanging.size > 0, TIMEOUT_MS);
      clock.advance(1);
      await publish("globex", 1);
      const meanwhile = await timeUntil(() => arrived.length === 3, 3 * TIMEOUT_MS);

      console.log(
        `[webhook fairness] globex delivery: ${alone.toFixed(0)} ms alone, ${flooded.toFixed(0)} ms behind acme's backlog, ${meanwhile.toFixed(0)} ms while acme's ${hanging.size} attempts hang (response timeout ${TIMEOUT_MS} ms)`,
      );
      expect(flooded).toBeLessThan(TIMEOUT_MS / 4);
      expect(meanwhile).toBeLessThan(TIMEOUT_MS / 4);
      expect(Math.max(flooded, meanwhile)).toBeLessThan(alone + 250);
      // acme holds its share of the slots, no more.
      const open = [...hanging].filter((socket) => !socket.destroyed).length;
      expect(open).toBeGreaterThan(0);
      expect(open).toBeLessThanOrEqual(h.config.webhooks.tenantConcurrency);
    } finally {
      // No new attempt; the hanging ones end as their connections are cut.
      const stopped = sender.stop();
      await hang.close();
      await stopped;
      await jobs.stop();
      await fast.close();
    }
    await deleteEndpoints("acme");
    await deleteEndpoints("globex");
  });
});

/**
 * A listener on 127.0.0.1 that never completes a TCP handshake: a worker thread listens with a backlog of 1
 * and blocks, so nothing accepts; once its accept queue is full the kernel drops further SYNs.
 */
async function startUnansweredListener() {
  const release = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { workerData, parentPort } = require("node:worker_threads");
     const server = require("node:net").createServer();
     server.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(workerData, 0, 0);
       server.close();
     });`,
    { eval: true, workerData: release },
  );
  const [port] = (await once(worker, "message")) as [number];
  // Fill the accept queue: connect until a handshake no longer completes.
  const fillers: Socket[] = [];
  for (let i = 0; i < 16; i++) {
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => {});
    fillers.push(socket);
    const completed = await Promise.race([
      once(socket, "connect").then(() => true),
      new Promise((resolve) => setTimeout(() => resolve(false), 300)),
    ]);
    if (!completed) break;
  }
  return {
    port,
    async close() {
      for (const socket of fillers) socket.destroy();
      Atomics.store(release, 0, 1);
      Atomics.notify(release, 0);
      await once(worker, "exit");
    },
  };
}

describe("connect timeout (Hardening II)", () => {
  it("gives up on an address that never completes the handshake after the connect timeout, not the response timeout", async () => {
    const unanswered = await startUnansweredListener();
    try {
      const created = await createEndpoint("acme", `http://127.0.0.1:${unanswered.port}/never`, {
        eventTypes: ["card.cvv.changed"],
      });
      expect(created.statusCode, created.body).toBe(201);
      const sender = createWebhookSender({
        ...webhookSenderDeps(h.runtime),
        timeoutMs: 5_000,
        connectTimeoutMs: 300,
        resolveHost: noNames,
      });
      await publish("acme", 1);
      const started = performance.now();
      await sendDue(sender);
      const took = performance.now() - started;
      const [delivery] = await deliveriesOf("acme", created.json().id);
      expect(delivery).toMatchObject({ status: "pending", attempts: 1, lastStatusCode: null });
      expect(delivery!.lastError).toBe("connect_timeout: no connection within 300 ms");
      expect(took).toBeLessThan(2_000);
    } finally {
      await unanswered.close();
    }
    await deleteEndpoints("acme");
  });
});

describe("circuit breaker (Hardening II)", () => {
  it("stops trying an endpoint after 3 failures in a row, for every sender, until one probe after the cool-down succeeds; nothing is lost", async () => {
    let answer = 500;
    const requests: string[] = [];
    const receiver = await listen((req, res) => {
      req.resume();
      req.on("end", () => {
        requests.push(String(req.headers["webhook-id"]));
        res.statusCode = answer;
        res.end();
      });
    });
    try {
      const created = await createEndpoint("acme", `${receiver.base}/flaky`, {
        eventTypes: ["card.cvv.changed"],
      });
      expect(created.statusCode, created.body).toBe(201);
      const endpointId = created.json().id as string;
      const view = async () =>
        (
          await h.call("GET", `/v1/webhook-endpoints/${endpointId}`, undefined, { token: await h.token() })
        ).json();
      const breaker = { breakerFailures: 3, breakerCooldownMs: 60_000, tenantConcurrency: 5 };
      const senderDeps = {
        ...webhookSenderDeps(h.runtime),
        ...breaker,
        timeoutMs: 2_000,
        resolveHost: noNames,
      };
      // Two senders: two processes on one store.
      const one = createWebhookSender(senderDeps);
      const two = createWebhookSender(senderDeps);
      const start = clock.now().getTime();

      await publish("acme", 5);
      await sendDue(one);
      expect(requests).toHaveLength(5); // the tenant's share: all five at once, all failing

      // Their retries fall due, but the circuit is open: no sender tries the endpoint, nothing is spent.
      clock.set(new Date(start + 30_000));
      await sendDue(one);
      await sendDue(two);
      expect(requests).toHaveLength(5);
      const waiting = await deliveriesOf("acme", endpointId);
      expect(waiting.map((d) => [d.status, d.attempts])).toEqual(Array(5).fill(["pending", 1]));
      expect(await view()).toMatchObject({
        consecutiveFailures: 5,
        circuitOpenUntil: new Date(start + 60_000).toISOString(),
      });

      // Cool-down over: one probe (of five due, with room for five), which fails: open again.
      clock.set(new Date(start + 61_000));
      await Promise.all([sendDue(one), sendDue(two)]);
      expect(requests).toHaveLength(6);
      expect(await view()).toMatchObject({
        consecutiveFailures: 6,
        circuitOpenUntil: new Date(start + 121_000).toISOString(),
      });
      clock.set(new Date(start + 100_000));
      await sendDue(two);
      expect(requests).toHaveLength(6);

      // The receiver is back: the next probe succeeds, the circuit closes and the waiting deliveries go out.
      answer = 204;
      clock.set(new Date(start + 122_000));
      await sendDue(two);
      expect(requests).toHaveLength(10);
      expect(await view()).toMatchObject({ consecutiveFailures: 0, circuitOpenUntil: null });
      // The first probe's delivery is retried on its own schedule (5 minutes after that attempt).
      clock.set(new Date(start + 61_000 + 5 * 60_000));
      await sendDue(one);
      const delivered = await deliveriesOf("acme", endpointId);
      expect(delivered.map((d) => d.status)).toEqual(Array(5).fill("succeeded"));
      expect(delivered.map((d) => d.attempts).sort()).toEqual([2, 2, 2, 2, 3]);
      expect(new Set(requests).size).toBe(5);
    } finally {
      await receiver.close();
    }
    await deleteEndpoints("acme");
  });
});
