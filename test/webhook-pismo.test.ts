// Pismo-format webhook endpoints end to end: a rotation reaches a real receiver on 127.0.0.1 in Pismo's
// "Card CVV changed" schema (rotate_cvv, version 1), signed as every delivery is; a cardvault-format endpoint
// still gets cardvault's shape; and events of test-clock cards carry the test clock's time.
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createWebhookSender, type WebhookSender } from "../src/jobs/webhook-sender.js";
import { fixedClock } from "../src/lib/clock.js";
import { webhookSenderDeps } from "../src/runtime.js";
import { createHarness, type Harness } from "./helpers/harness.js";
import { startReceiver } from "./helpers/webhook-receiver.js";

const system = fixedClock("2026-03-01T08:00:00Z");
const START = "2026-03-01T15:00:00.000Z";
const H = 3_600_000;
const secrets = new Map<string, string>();
let h: Harness;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let base: string;
let sender: WebhookSender;

beforeAll(async () => {
  h = await createHarness({ sandbox: true, clock: system, allowPrivateWebhooks: ["acme"] });
  receiver = await startReceiver(
    (path) => secrets.get(path),
    () => system.now(),
  );
  base = receiver.base;
  sender = createWebhookSender({ ...webhookSenderDeps(h.runtime), timeoutMs: 2_000 });
});
afterAll(async () => {
  await receiver.close();
  await h.close();
});

async function createEndpoint(path: string, extra: Record<string, unknown> = {}) {
  const response = await h.call("POST", "/v1/webhook-endpoints", { url: `${base}${path}`, ...extra });
  expect(response.statusCode, response.body).toBe(201);
  const created = response.json() as { id: string; secret: string; format: string };
  secrets.set(path, created.secret);
  return created;
}

async function deliver(): Promise<void> {
  await sender.runOnce();
  await sender.idle();
}

async function testClockCard() {
  const clock = await h.call("POST", "/v1/test-clocks", { frozenTime: START });
  expect(clock.statusCode, clock.body).toBe(201);
  const clockId = (clock.json() as { id: string }).id;
  const card = await h.call("POST", "/v1/cards", {
    type: "virtual",
    cvvRotationIntervalHours: 24,
    testClockId: clockId,
    cardholderName: "Ho Lee Smokes",
  });
  expect(card.statusCode, card.body).toBe(201);
  return { clockId, card: card.json() as { publicToken: string; last4: string; expiry: string } };
}

/** What reached a path; every delivery's signature verified. */
const of = (path: string) => {
  const entries = receiver.received.filter((r) => r.path === path);
  expect(entries.filter((r) => r.verifyError !== undefined)).toEqual([]);
  return entries.map((r) => ({ ...r, verified: r.verified as Record<string, unknown> }));
};

describe("webhook endpoint format", () => {
  it("is cardvault by default, pismo when asked, shown in every answer; anything else is a 400", async () => {
    const plain = await createEndpoint("/format-default");
    expect(plain.format).toBe("cardvault");
    const pismo = await createEndpoint("/format-pismo", { format: "pismo" });
    expect(pismo.format).toBe("pismo");
    const read = await h.call("GET", `/v1/webhook-endpoints/${pismo.id}`);
    expect(read.json()).toMatchObject({ format: "pismo" });
    const bad = await h.call("POST", "/v1/webhook-endpoints", { url: `${base}/x`, format: "stripe" });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers["content-type"]).toMatch(/problem\+json/);
    for (const e of [plain, pismo]) await h.call("DELETE", `/v1/webhook-endpoints/${e.id}`);
  });
});

describe("pismo-format deliveries", () => {
  it("delivers rotations and interval changes in Pismo's rotate_cvv-1 schema, signed; skips other types", async () => {
    await createEndpoint("/pismo", { format: "pismo" });
    await createEndpoint("/native");
    const { card } = await testClockCard();
    const cvv = (await h.call("GET", `/v1/cards/${card.publicToken}/cvv`)).json().cvv as string;
    const rotate = await h.call("POST", `/v1/cards/${card.publicToken}/cvv/rotate`, {});
    expect(rotate.statusCode, rotate.body).toBe(200);
    const interval = await h.call("PUT", `/v1/cards/${card.publicToken}/cvv/rotation`, { intervalHours: 12 });
    expect(interval.statusCode, interval.body).toBe(200);
    await deliver();

    const pismo = of("/pismo");
    // card.created is not a Pismo event: the pismo endpoint gets the two CVV changes only.
    expect(pismo).toHaveLength(2);
    const [rotated, changed] = pismo.map((r) => r.verified);
    expect(rotated).toEqual({
      event_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      domain: "cards",
      event_type: "rotate_cvv-1",
      schema_version: 1,
      org_id: "acme",
      cid: expect.any(String),
      timestamp: START,
      data: {
        account_id: null,
        card_id: Number(card.publicToken),
        card_hash: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/),
        card_last_four_numbers: card.last4,
        card_name: "Ho Lee Smokes",
        card_printed_name: "Ho Lee Smokes",
        card_status: "NORMAL",
        contactless_enabled: false,
        cvv_next_rotation_date: "2026-03-02T15:00:00.000Z",
        cvv_rotation_type: "MANUAL",
        operation_type: "ROTATE_CVV",
        expiration_date: expect.stringMatching(/^20\d\d-\d\d-\d\dT23:59:59Z$/),
      },
    });
    expect(changed).toMatchObject({
      event_type: "rotate_cvv-1",
      data: { operation_type: "CHANGE_CVV_ROTATION", cvv_next_rotation_date: "2026-03-02T03:00:00.000Z" },
    });
    expect((rotated!.data as { card_hash: string }).card_hash).toBe(
      (changed!.data as { card_hash: string }).card_hash,
    );
    const newCvv = (await h.call("GET", `/v1/cards/${card.publicToken}/cvv`)).json().cvv as string;
    for (const r of pismo) {
      expect(r.body).not.toContain(`"${cvv}"`);
      expect(r.body).not.toContain(`"${newCvv}"`);
    }

    // The cardvault endpoint still gets cardvault's shape, for every type.
    const native = of("/native").map((r) => r.verified);
    expect(native.map((e) => e.type)).toEqual(["card.created", "card.cvv.changed", "card.cvv.changed"]);
    expect(Object.keys(native[1]!).sort()).toEqual(["data", "id", "occurredAt", "type"]);
    expect(native[1]!.data).toEqual({
      publicToken: card.publicToken,
      last4: card.last4,
      rotationType: "MANUAL",
      operationType: "ROTATE_CVV",
      nextRotationAt: "2026-03-02T15:00:00.000Z",
      rotationIntervalHours: 24,
    });
  });

  it("verifies with the official standardwebhooks package, each delivery carrying every required field of Pismo's schema", async () => {
    const deliveries = receiver.received.filter((r) => r.path === "/pismo");
    expect(deliveries).toHaveLength(2);
    // Pismo's "Card CVV changed" event (domain cards, event rotate_cvv, version 1): its data fields, every one
    // present (account_id is null: cardvault has no accounts, docs/webhooks.md).
    const required = [
      "account_id",
      "card_id",
      "card_hash",
      "card_last_four_numbers",
      "card_name",
      "card_printed_name",
      "card_status",
      "contactless_enabled",
      "cvv_next_rotation_date",
      "cvv_rotation_type",
      "operation_type",
      "expiration_date",
    ];
    for (const delivery of deliveries) {
      // The library checks the signed timestamp against the wall clock (5 minutes' tolerance): these were
      // signed at the harness's fixed time, so the check runs at that time.
      vi.setSystemTime(Number(delivery.headers["webhook-timestamp"]) * 1000);
      let event: {
        domain: string;
        event_type: string;
        schema_version: number;
        data: Record<string, unknown>;
      };
      try {
        event = new Webhook(secrets.get("/pismo")!).verify(delivery.body, delivery.headers) as typeof event;
        expect(() => new Webhook(secrets.get("/native")!).verify(delivery.body, delivery.headers)).toThrow();
      } finally {
        vi.useRealTimers();
      }
      expect(event).toMatchObject({ domain: "cards", event_type: "rotate_cvv-1", schema_version: 1 });
      for (const field of required) expect(event.data, field).toHaveProperty(field);
      expect(typeof event.data.card_id).toBe("number");
      expect(event.data.account_id).toBeNull();
    }
  });

  it("gives a test-clock card's events the test clock's time, not the wall clock's", async () => {
    await createEndpoint("/clock-native");
    const { clockId } = await testClockCard();
    const advanced = await h.call("POST", `/v1/test-clocks/${clockId}/advance`, {
      to: new Date(new Date(START).getTime() + 24 * H).toISOString(),
    });
    expect(advanced.json()).toMatchObject({ rotations: 1 });
    await deliver();
    const native = of("/clock-native").map((r) => r.verified as { type: string; occurredAt: string });
    expect(native.map((e) => [e.type, e.occurredAt])).toEqual([
      ["card.created", START],
      ["card.cvv.changed", "2026-03-02T15:00:00.000Z"],
    ]);
  });

  it("gives every other event type of a test-clock card the test clock's time too", async () => {
    await createEndpoint("/clock-every");
    const { clockId, card } = await testClockCard();
    const at = new Date(new Date(START).getTime() + 2 * H).toISOString();
    const advanced = await h.call("POST", `/v1/test-clocks/${clockId}/advance`, { to: at });
    expect(advanced.statusCode, advanced.body).toBe(200);
    const t = card.publicToken;
    const cvv = (await h.call("GET", `/v1/cards/${t}/cvv`)).json().cvv as string;
    const wrong = cvv === "000" ? "001" : "000";
    for (let i = 0; i < 3; i++) await h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: wrong });
    expect((await h.call("POST", `/v1/cards/${t}/cvv/unblock`, {})).statusCode).toBe(204);
    expect((await h.call("PUT", `/v1/cards/${t}/pin`, { pin: "482916" })).statusCode).toBe(204);
    for (let i = 0; i < 3; i++) await h.call("POST", `/v1/cards/${t}/pin/verify`, { pin: "000000" });
    expect((await h.call("POST", `/v1/cards/${t}/pin/unblock`, {})).statusCode).toBe(204);
    expect((await h.call("PATCH", `/v1/cards/${t}`, { status: "suspended" })).statusCode).toBe(200);
    await deliver();
    const events = of("/clock-every").map((r) => r.verified as { type: string; occurredAt: string });
    expect(events.map((e) => e.type).sort()).toEqual(
      [
        "card.created",
        "card.status.changed",
        "cvv.blocked",
        "cvv.unblocked",
        "pin.blocked",
        "pin.changed",
        "pin.unblocked",
      ].sort(),
    );
    for (const e of events)
      expect([e.type, e.occurredAt]).toEqual([e.type, e.type === "card.created" ? START : at]);
  });

  it("delivers an automatic rotation in Pismo's schema at the test clock's time", async () => {
    await createEndpoint("/clock-pismo", { format: "pismo" });
    const { clockId, card } = await testClockCard();
    const advanced = await h.call("POST", `/v1/test-clocks/${clockId}/advance`, {
      to: new Date(new Date(START).getTime() + 24 * H).toISOString(),
    });
    expect(advanced.json()).toMatchObject({ rotations: 1 });
    await deliver();
    const [auto] = of("/clock-pismo").map((r) => r.verified as { timestamp: string; data: object });
    expect(auto).toMatchObject({
      timestamp: "2026-03-02T15:00:00.000Z",
      data: {
        card_id: Number(card.publicToken),
        cvv_rotation_type: "AUTOMATIC",
        cvv_next_rotation_date: "2026-03-03T15:00:00.000Z",
      },
    });
  });
});
