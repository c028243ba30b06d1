// Dynamic CVVs through the API, on test clocks: the seed's scenarios end to end, with the events they emit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeCvv } from "../src/crypto/cvv.js";
import { createRotationScheduler } from "../src/jobs/scheduler.js";
import { fixedClock } from "../src/lib/clock.js";
import { cardRow, keyMaterial, panOf } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
const system = fixedClock("2026-03-01T08:00:00Z");
beforeAll(async () => {
  // Forced rotations here go well past a day's manage limit on one card (test/rate-limit-classes.test.ts has it).
  h = await createHarness({
    sandbox: true,
    clock: system,
    env: { CARDVAULT_RATE_LIMIT_MANAGE_PER_CARD_DAY: "1000" },
  });
});
afterAll(() => h.close());

const START = "2026-03-01T15:00:00.000Z";
const plus = (iso: string, ms: number) => new Date(new Date(iso).getTime() + ms).toISOString();
const H = 3_600_000;
const M = 60_000;

async function testClock(frozenTime = START) {
  const response = await h.call("POST", "/v1/test-clocks", { frozenTime });
  expect(response.statusCode).toBe(201);
  return response.json() as { id: string; frozenTime: string };
}

async function advance(clockId: string, to: string) {
  const response = await h.call("POST", `/v1/test-clocks/${clockId}/advance`, { to });
  expect(response.statusCode, response.body).toBe(200);
  return response.json() as { rotations: number; frozenTime: string };
}

const cvvOf = async (t: string) => (await h.call("GET", `/v1/cards/${t}/cvv`)).json().cvv as string;
const rotationOf = async (t: string) => (await h.call("GET", `/v1/cards/${t}/cvv/rotation`)).json();
const forceRotate = async (t: string, body: object = {}) => h.call("POST", `/v1/cards/${t}/cvv/rotate`, body);

async function cvvEvents(t: string) {
  const all: Record<string, unknown>[] = [];
  let cursor: string | null = null;
  const token = await h.token(); // the system clock may have moved past the default token's expiry
  do {
    const url: string = `/v1/events?type=card.cvv.changed&limit=100${cursor ? `&cursor=${cursor}` : ""}`;
    const page: { items: { data: Record<string, unknown> }[]; nextCursor: string | null } = (
      await h.call("GET", url, undefined, { token })
    ).json();
    all.push(...page.items.map((e) => e.data));
    cursor = page.nextCursor;
  } while (cursor);
  return all.filter((d) => d.publicToken === t);
}

async function newCard(clockId: string, intervalHours = 24) {
  const response = await h.call("POST", "/v1/cards", {
    type: "virtual",
    cvvRotationIntervalHours: intervalHours,
    testClockId: clockId,
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json() as { publicToken: string; cvvNextRotationAt: string; last4: string };
}

describe("CVV rotation on a test clock", () => {
  it("a card created with 24 h rotates once after 24 h: a new CVV, an AUTOMATIC event, next at +24 h", async () => {
    const clock = await testClock();
    const card = await newCard(clock.id);
    expect(card.cvvNextRotationAt).toBe(plus(START, 24 * H));
    const before = await cvvOf(card.publicToken);

    expect((await advance(clock.id, plus(START, 24 * H - 1))).rotations).toBe(0);
    expect((await advance(clock.id, plus(START, 24 * H))).rotations).toBe(1);
    const after = await cvvOf(card.publicToken);
    expect(after).not.toBe(before);
    expect(await rotationOf(card.publicToken)).toEqual({
      intervalHours: 24,
      nextRotationAt: plus(START, 48 * H),
      lastRotatedAt: plus(START, 24 * H),
    });
    const events = await cvvEvents(card.publicToken);
    expect(events.at(-1)).toEqual({
      publicToken: card.publicToken,
      last4: card.last4,
      rotationType: "AUTOMATIC",
      operationType: "ROTATE_CVV",
      nextRotationAt: plus(START, 48 * H),
      rotationIntervalHours: 24,
    });
    // No field carries the CVV (a substring search of the JSON would also hit it inside last4 or the token).
    for (const event of events) expect(Object.values(event)).not.toContain(after);

    // The API's CVV is the Visa CVV of the card's new service code.
    const row = await cardRow(h, card.publicToken);
    expect(after).toBe(
      computeCvv({
        cvk: keyMaterial(h, row.cvk_id),
        pan: await panOf(h, card.publicToken),
        expiry: row.expiry,
        serviceCode: row.cvv_service_code,
      }),
    );
  });

  it("a forced rotation resets the schedule; one within 2 minutes of the automatic one rotates without rescheduling", async () => {
    const clock = await testClock();
    const card = await newCard(clock.id);
    await advance(clock.id, plus(START, 24 * H));
    const cvv1 = await cvvOf(card.publicToken);

    await advance(clock.id, plus(START, 24 * H + 1 * M));
    const forced = await forceRotate(card.publicToken);
    expect(forced.statusCode).toBe(200);
    expect(forced.json()).toEqual({
      rotatedAt: plus(START, 24 * H + M),
      rotationType: "MANUAL",
      nextRotationAt: plus(START, 48 * H),
    });
    expect(await cvvOf(card.publicToken)).not.toBe(cvv1);

    await advance(clock.id, plus(START, 30 * H));
    const reset = (await forceRotate(card.publicToken)).json();
    expect(reset.nextRotationAt).toBe(plus(START, 54 * H));
    expect((await advance(clock.id, plus(START, 53 * H))).rotations).toBe(0);
    expect((await advance(clock.id, plus(START, 54 * H))).rotations).toBe(1);
  });

  it("three forced rotations within 2 minutes: three new CVVs, one reschedule", async () => {
    const clock = await testClock();
    const card = await newCard(clock.id);
    await advance(clock.id, plus(START, 5 * H));
    const cvvs = [await cvvOf(card.publicToken)];
    const nexts: string[] = [];
    for (const offset of [0, 40_000, 90_000]) {
      await advance(clock.id, plus(START, 5 * H + offset));
      nexts.push((await forceRotate(card.publicToken)).json().nextRotationAt);
      cvvs.push(await cvvOf(card.publicToken));
    }
    for (let i = 1; i < cvvs.length; i++) expect(cvvs[i]).not.toBe(cvvs[i - 1]);
    expect(nexts).toEqual([plus(START, 29 * H), plus(START, 29 * H), plus(START, 29 * H)]);
    const events = await cvvEvents(card.publicToken);
    expect(
      events.filter((e) => e.operationType === "ROTATE_CVV" && e.rotationType === "MANUAL"),
    ).toHaveLength(3);
  });

  it("advancing 3 days at once rotates once and keeps the cadence", async () => {
    const clock = await testClock();
    const card = await newCard(clock.id);
    const result = await advance(clock.id, plus(START, 72 * H + 30 * M));
    expect(result.rotations).toBe(1);
    expect((await rotationOf(card.publicToken)).nextRotationAt).toBe(plus(START, 96 * H));
  });

  it("uses a given service code as is, and refuses one that is not 3 digits", async () => {
    const clock = await testClock();
    const card = await newCard(clock.id);
    expect((await forceRotate(card.publicToken, { serviceCode: "123" })).statusCode).toBe(200);
    expect((await cardRow(h, card.publicToken)).cvv_service_code).toBe("123");
    for (const serviceCode of ["12", "1234", "abc", 123]) {
      const response = await forceRotate(card.publicToken, { serviceCode });
      expect(response.statusCode, String(serviceCode)).toBe(400);
    }
    expect((await cardRow(h, card.publicToken)).cvv_service_code).toBe("123");
  });

  it("never brings back one of the card's last 10 CVVs: drawn codes avoid them, a chosen one that would is 409", async () => {
    const clock = await testClock();
    const card = await newCard(clock.id);
    const seen = [await cvvOf(card.publicToken)];
    for (let i = 0; i < 10; i++) {
      expect((await forceRotate(card.publicToken)).statusCode).toBe(200);
      const cvv = await cvvOf(card.publicToken);
      expect(seen.slice(-10), `rotation ${i + 1}`).not.toContain(cvv);
      seen.push(cvv);
    }
    // The card's first service code (000) would bring its first CVV back: refused, nothing changes.
    const before = await cardRow(h, card.publicToken);
    const events = (await cvvEvents(card.publicToken)).length;
    const codes = ["000", before.cvv_service_code];
    for (const serviceCode of codes) {
      const refused = await forceRotate(card.publicToken, { serviceCode });
      expect(refused.statusCode, serviceCode).toBe(409);
      expect(refused.json().code).toBe("cvv_would_repeat");
    }
    expect((await cardRow(h, card.publicToken)).cvv_service_code).toBe(before.cvv_service_code);
    expect(await cvvEvents(card.publicToken)).toHaveLength(events);
  });

  it("sets, reads and deletes the interval; a deleted schedule never rotates, forced rotations still work", async () => {
    const clock = await testClock();
    const card = await newCard(clock.id);
    await advance(clock.id, plus(START, 2 * H));
    const put = await h.call("PUT", `/v1/cards/${card.publicToken}/cvv/rotation`, { intervalHours: 6 });
    expect(put.json()).toEqual({ intervalHours: 6, nextRotationAt: plus(START, 8 * H), lastRotatedAt: null });
    expect((await h.call("DELETE", `/v1/cards/${card.publicToken}/cvv/rotation`)).statusCode).toBe(204);
    expect(await rotationOf(card.publicToken)).toEqual({
      intervalHours: null,
      nextRotationAt: null,
      lastRotatedAt: null,
    });
    expect((await advance(clock.id, plus(START, 100 * H))).rotations).toBe(0);
    expect((await forceRotate(card.publicToken)).json().nextRotationAt).toBeNull();
    const ops = (await cvvEvents(card.publicToken)).map((e) => e.operationType);
    expect(ops).toEqual(["CHANGE_CVV_ROTATION", "DELETE_CVV_ROTATION", "ROTATE_CVV"]);
    for (const intervalHours of [0, 1.5, "6", -3]) {
      expect(
        (await h.call("PUT", `/v1/cards/${card.publicToken}/cvv/rotation`, { intervalHours })).statusCode,
      ).toBe(400);
    }
  });

  it("refuses physical and closed cards with 409, and a closed card that was due never rotates", async () => {
    const clock = await testClock();
    const physical = (await h.call("POST", "/v1/cards", { type: "physical" })).json();
    const refused = await forceRotate(physical.publicToken);
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: "card_not_virtual" });
    expect(
      (await h.call("POST", "/v1/cards", { type: "physical", cvvRotationIntervalHours: 24 })).statusCode,
    ).toBe(409);

    const card = await newCard(clock.id, 1);
    await h.call("PATCH", `/v1/cards/${card.publicToken}`, { status: "closed" });
    expect((await advance(clock.id, plus(START, 5 * H))).rotations).toBe(0);
    expect((await forceRotate(card.publicToken)).json()).toMatchObject({ code: "card_closed" });
  });

  it("test clocks belong to sandbox tenants", async () => {
    const globex = await h.token(undefined, "globex");
    const response = await h.call("POST", "/v1/test-clocks", { frozenTime: START }, { token: globex });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: "sandbox_only" });
    const clock = await testClock();
    expect(
      (await h.call("GET", `/v1/test-clocks/${clock.id}`, undefined, { token: globex })).statusCode,
    ).toBe(404);
    expect(
      (await h.call("POST", `/v1/test-clocks/${clock.id}/advance`, { to: "2020-01-01T00:00:00Z" }))
        .statusCode,
    ).toBe(400);
    expect((await h.call("POST", "/v1/test-clocks", { frozenTime: "yesterday" })).statusCode).toBe(400);
  });
});

describe("rotation scheduler on the system clock", () => {
  it("rotates each due card exactly once; a second process without the lease does nothing", async () => {
    const cards = await Promise.all(
      Array.from({ length: 5 }, async () =>
        (await h.call("POST", "/v1/cards", { type: "virtual", cvvRotationIntervalHours: 1 })).json(),
      ),
    );
    const deps = {
      rotation: h.runtime.services.rotation,
      leases: h.runtime.repos.leases,
      clock: system,
      exclusive: true,
    };
    const one = createRotationScheduler({ ...deps, holder: "one", batchSize: 2 });
    const two = createRotationScheduler({ ...deps, holder: "two", batchSize: 2 });
    expect(await one.runOnce()).toBe(0); // nothing due yet
    system.advance(H);
    expect(await one.runOnce()).toBe(5);
    expect(await two.runOnce()).toBe(0); // "one" holds the lease
    expect(await one.runOnce()).toBe(0); // each once per due time
    await one.stop();
    system.advance(H);
    expect(await two.runOnce()).toBe(5);
    for (const card of cards) {
      const automatic = (await cvvEvents(card.publicToken)).filter((e) => e.rotationType === "AUTOMATIC");
      expect(automatic).toHaveLength(2);
    }
  });
});
