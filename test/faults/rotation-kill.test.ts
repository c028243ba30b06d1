// SIGKILL `serve` in the middle of 5,000 due CVV rotations (SQLite here; PostgreSQL in the postgres project):
// after a restart every card has rotated exactly once, every event is in the outbox once, and every webhook
// has reached the receiver at least once. Leases of the killed process are fast-forwarded to their expiry
// (instead of waiting 30–50 s for them), exactly what a restarted process meets once they lapse.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServedWorld, type ServedWorld } from "../helpers/served.js";

const CARDS = 5000;
let world: ServedWorld;
let receiver: Server;
const received = new Map<string, number>();
let clockId: string;

beforeAll(async () => {
  world = await createServedWorld({ tenants: [{ id: "acme", sandbox: true, allowPrivateWebhooks: true }] });
  receiver = createServer((req, res) => {
    const id = String(req.headers["webhook-id"]);
    req.resume();
    req.on("end", () => {
      received.set(id, (received.get(id) ?? 0) + 1);
      res.statusCode = 204;
      res.end();
    });
  });
  receiver.listen(0, "127.0.0.1");
  await once(receiver, "listening");
  const actor = { tenantId: "acme", subject: "faults" };
  const { services } = world.runtime;
  await services.webhooks.create(actor, {
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/rotations`,
    eventTypes: ["card.cvv.changed"],
  });
  clockId = (await services.testClocks.create(actor, { frozenTime: "2026-03-01T15:00:00Z" })).id;
  for (let i = 0; i < CARDS; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, () =>
        services.cards.create(actor, { type: "virtual", cvvRotationIntervalHours: 24, testClockId: clockId }),
      ),
    );
  }
  await world.runtime.repos.testClocks.advance(clockId, "2026-03-02T15:00:00.000Z");
}, 180_000);
afterAll(async () => {
  receiver?.close();
  await world?.close();
});

describe("SIGKILL during 5,000 due rotations", () => {
  it("rotates every card exactly once, records each event once and delivers every webhook after a restart", async () => {
    const db = world.runtime.store.db;
    const count = async (rows: { executeTakeFirstOrThrow(): Promise<{ n: unknown }> }) =>
      Number((await rows.executeTakeFirstOrThrow()).n);
    const due = () =>
      count(
        db
          .selectFrom("cards")
          .select((eb) => eb.fn.countAll().as("n"))
          .where("next_rotation_at", "<=", "2026-03-02T15:00:00.000Z"),
      );
    const pending = () =>
      count(
        db
          .selectFrom("webhook_deliveries")
          .select((eb) => eb.fn.countAll().as("n"))
          .where("status", "!=", "succeeded"),
      );
    expect(await due()).toBe(CARDS);
    const jobs = { CARDVAULT_JOBS: "on", CARDVAULT_JOB_INTERVAL_MS: "20" };
    const first = await world.spawnServe(jobs);
    // Kill as soon as part of the work has committed.
    let seen = await due();
    for (let i = 0; i < 6000 && seen === CARDS; i++) {
      await new Promise((r) => setTimeout(r, 2));
      seen = await due();
    }
    first.process.child.kill("SIGKILL");
    expect(await first.process.exited).toBe("SIGKILL");
    const leftAtKill = await due();
    expect(seen).toBeLessThan(CARDS);
    expect(leftAtKill).toBeGreaterThan(0); // killed in the middle: work was left for the restart

    // What a restarted process finds once the dead one's leases have lapsed.
    const past = "2000-01-01T00:00:00.000Z";
    await db.updateTable("job_leases").set({ expires_at: past }).execute();
    await db
      .updateTable("webhook_deliveries")
      .set({ locked_until: past })
      .where("status", "=", "pending")
      .execute();
    const second = await world.serve(jobs);

    const deadline = Date.now() + 90_000;
    while (((await due()) > 0 || (await pending()) > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    second.process.child.kill("SIGTERM");
    await second.process.exited;
    expect(await due()).toBe(0);
    expect(await pending()).toBe(0);

    const events = await db
      .selectFrom("outbox_events")
      .select(["id", "payload"])
      .where("type", "=", "card.cvv.changed")
      .execute();
    const perCard = new Map<string, number>();
    for (const e of events) {
      const token = (JSON.parse(e.payload).data as { publicToken: string }).publicToken;
      perCard.set(token, (perCard.get(token) ?? 0) + 1);
    }
    expect(perCard.size).toBe(CARDS);
    expect([...perCard.values()].filter((n) => n !== 1)).toEqual([]);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events.filter((e) => !received.has(e.id)).length).toBe(0);
    const deliveries = await db.selectFrom("webhook_deliveries").select(["event_id"]).execute();
    expect(deliveries.length).toBe(CARDS); // one delivery row per event, none duplicated by the restart
    console.info(
      `[faults] killed serve with ${leftAtKill} of ${CARDS} rotations left; ${received.size} events delivered, ${[...received.values()].filter((n) => n > 1).length} more than once`,
    );
  }, 150_000);
});
