// GET /metrics after a scripted flow over real HTTP: a card created, its CVV verified right and wrong until it
// blocks, a verify while blocked, an unblock, the wrong try that spends the budget, a rotation (manual, then
// automatic after the scheduler fell behind), a PIN verify, a webhook delivered, 429s. Each counter is checked
// to the exact count with the right labels (what rolls back is not counted: src/telemetry/instrument.test.ts);
// the listener is an address of its own (the API answers 404 at /metrics, the listener nothing but /metrics);
// no label holds the card's token or PAN.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWebhookSender } from "../src/jobs/webhook-sender.js";
import { fixedClock } from "../src/lib/clock.js";
import { webhookSenderDeps } from "../src/runtime.js";
import { type MetricsServer, startMetricsServer } from "../src/telemetry/metrics-server.js";
import { expectedCvv, panOf, wrongCvv } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

const clock = fixedClock(new Date());
let h: Harness;
let api: string;
let metricsServer: MetricsServer;
let metricsUrl: string;
let receiver: Server;
let delivered = 0;

beforeAll(async () => {
  h = await createHarness({
    clock,
    maxCvvTries: 3,
    allowPrivateWebhooks: ["acme"],
    env: {
      CARDVAULT_METRICS_LISTEN: "127.0.0.1:0",
      CARDVAULT_RATE_LIMIT_PER_CARD: "12",
      CARDVAULT_WRONG_TRY_BUDGET: "4",
    },
  });
  api = await h.app.listen({ host: "127.0.0.1", port: 0 });
  metricsServer = await startMetricsServer(h.runtime.telemetry.metrics!, h.config.metricsListen!);
  metricsUrl = `http://127.0.0.1:${metricsServer.port}`;
  receiver = createServer((req, res) => {
    req.resume().on("end", () => {
      delivered++;
      res.writeHead(204).end();
    });
  });
  receiver.listen(0, "127.0.0.1");
  await once(receiver, "listening");
});
afterAll(async () => {
  receiver?.close();
  await metricsServer?.close();
  await h?.close();
});

async function call(method: string, path: string, body?: unknown) {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${await h.token()}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

/** The scraped samples: `name{labels}` → value. */
async function scrape(): Promise<Map<string, number>> {
  const response = await fetch(`${metricsUrl}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

const sample = (samples: Map<string, number>, key: string) => samples.get(key) ?? 0;

describe("GET /metrics", () => {
  it("counts a scripted flow with the right labels, and only what committed", async () => {
    const endpoint = await call("POST", "/v1/webhook-endpoints", {
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`,
    });
    expect(endpoint.status).toBe(201);
    const created = await call("POST", "/v1/cards", { type: "virtual" });
    expect(created.status).toBe(201);
    const t = created.body.publicToken as string;
    const right = await expectedCvv(h, t);
    const wrong = await wrongCvv(h, t);
    const verify = async (cvv: string) => (await call("POST", `/v1/cards/${t}/cvv/verify`, { cvv })).body;

    expect((await verify(right)).result).toBe("match");
    for (const remaining of [2, 1, 0]) expect((await verify(wrong)).remainingTries).toBe(remaining);
    expect((await verify(right)).result).toBe("blocked");
    expect((await call("POST", `/v1/cards/${t}/cvv/unblock`, {})).status).toBe(204);
    // The fourth wrong try in the budget's window compromises the CVV.
    expect(await verify(wrong)).toMatchObject({ result: "mismatch", status: "Blocked" });
    expect((await call("POST", `/v1/cards/${t}/cvv/unblock`, {})).status).toBe(409);
    expect((await call("POST", `/v1/cards/${t}/cvv/rotate`, {})).status).toBe(200);
    // The rotation ends the compromise; the counter stays blocked until unblocked.
    expect((await call("POST", `/v1/cards/${t}/cvv/unblock`, {})).status).toBe(204);
    expect((await call("POST", `/v1/cards/${t}/pin/verify`, { pin: "0000" })).status).toBe(200);
    // 7 limited attempts so far; right CVVs until the card's limit (12) refuses them.
    const rotated = await expectedCvv(h, t);
    let matched = 0;
    let limited = 0;
    for (let i = 0; i < 8; i++) {
      const r = await call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: rotated });
      if (r.status === 200) matched++;
      if (r.status === 429) limited++;
    }
    expect(matched).toBe(5);
    expect(limited).toBe(3);

    // The scheduler falls behind by an hour, then catches up.
    expect((await call("PUT", `/v1/cards/${t}/cvv/rotation`, { intervalHours: 1 })).status).toBe(200);
    clock.advance(2 * 3_600_000);
    const behind = await scrape();
    expect(sample(behind, "cardvault_rotation_lag_seconds")).toBe(3600);
    expect(await h.runtime.services.rotation.runDue(clock.now(), { limit: 10 })).toBe(1);

    const pending = sample(await scrape(), "cardvault_webhook_queue_depth");
    expect(pending).toBeGreaterThan(0);
    const sender = createWebhookSender(webhookSenderDeps(h.runtime));
    await sender.runOnce();
    await sender.idle();
    expect(delivered).toBe(pending);

    const m = await scrape();
    const cvv = (labels: string) => `{secret="cvv",${labels}tenant="acme"}`;
    expect(sample(m, `cardvault_verify_total${cvv('outcome="match",')}`)).toBe(1 + matched);
    expect(sample(m, `cardvault_verify_total${cvv('outcome="mismatch",')}`)).toBe(4);
    expect(sample(m, `cardvault_verify_total${cvv('outcome="blocked",')}`)).toBe(1);
    expect(sample(m, 'cardvault_verify_total{secret="pin",outcome="mismatch",tenant="acme"}')).toBe(1);
    expect(sample(m, `cardvault_counter_blocked_total${cvv('reason="wrong_tries",')}`)).toBe(2);
    expect(sample(m, `cardvault_counter_unblocked_total${cvv("")}`)).toBe(2);
    expect(sample(m, `cardvault_secret_compromised_total${cvv("")}`)).toBe(1);
    expect(sample(m, 'cardvault_cvv_rotations_total{type="manual"}')).toBe(1);
    expect(sample(m, 'cardvault_cvv_rotations_total{type="automatic"}')).toBe(1);
    expect(sample(m, 'cardvault_rate_limited_total{class="verify",scope="card",tenant="acme"}')).toBe(
      limited,
    );
    expect(sample(m, "cardvault_rotation_lag_seconds")).toBe(0);
    expect(sample(m, 'cardvault_webhook_deliveries_total{outcome="succeeded"}')).toBe(pending);
    expect(sample(m, "cardvault_webhook_queue_depth")).toBe(0);

    const route = (path: string, method: string, status: number) =>
      `cardvault_http_request_duration_seconds_count{route="${path}",method="${method}",status_code="${status}"}`;
    expect(sample(m, route("/v1/cards/:publicToken/cvv/verify", "POST", 200))).toBe(6 + matched);
    expect(sample(m, route("/v1/cards/:publicToken/cvv/verify", "POST", 429))).toBe(limited);
    expect(sample(m, route("/v1/cards/:publicToken/cvv/unblock", "POST", 409))).toBe(1);
    expect(sample(m, route("/v1/cards", "POST", 201))).toBe(1);
    // A 429 is refused before any work once the process has seen the card's bucket full.
    expect(
      sample(m, 'cardvault_key_operation_duration_seconds_count{operation="verifyCvv",outcome="ok"}'),
    ).toBe(6 + matched);
    expect(
      sample(m, 'cardvault_key_operation_duration_seconds_count{operation="issuePan",outcome="ok"}'),
    ).toBe(1);
    expect(
      sample(m, 'cardvault_store_transaction_duration_seconds_count{outcome="rollback"}'),
    ).toBeGreaterThan(0);
    const commits = sample(m, "cardvault_store_commit_duration_seconds_count");
    expect(commits).toBeGreaterThan(10);
    expect(sample(m, "cardvault_store_commit_group_size_count")).toBe(commits);
    expect(sample(m, "cardvault_store_commit_group_size_sum")).toBeGreaterThanOrEqual(commits);
    expect(m.has("process_cpu_user_seconds_total")).toBe(true);
    expect(m.has("nodejs_eventloop_lag_seconds")).toBe(true);

    const labels = [...m.keys()].join("\n");
    for (const secret of [t, await panOf(h, t), right, rotated]) expect(labels).not.toContain(secret);
    expect(labels).not.toMatch(/route="\/v1\/cards\/[0-9]/);
  });

  it("is served on its own listener only: the API has no /metrics, the listener nothing else", async () => {
    expect((await fetch(`${api}/metrics`)).status).toBe(404);
    const token = await h.token();
    expect((await fetch(`${api}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
      404,
    );
    for (const path of ["/", "/v1/cards", "/healthz", "/metricsx", "/metrics/../v1/cards"]) {
      expect((await fetch(`${metricsUrl}${path}`)).status, path).toBe(404);
    }
    expect((await fetch(`${metricsUrl}/metrics`, { method: "POST" })).status).toBe(405);
    expect((await fetch(`${metricsUrl}/metrics?x=1`)).status).toBe(200);
  });
});
