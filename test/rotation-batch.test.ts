// The scheduler's batched rotation path at the service and repository level, on SQLite and PostgreSQL: a
// batch rotates every claimed card once and writes exactly one audit row and one AUTOMATIC event per
// rotation; a card changed between the claim and the batch UPDATE is skipped, alone, with no trace.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { fixedClock } from "../src/lib/clock.js";
import {
  accessTokenSettings,
  createServices,
  openRuntime,
  type Runtime,
  revealSettings,
} from "../src/runtime.js";
import { SCHEDULER_SUBJECT } from "../src/services/rotation.js";
import type { CardRepo } from "../src/store/card-repo.js";
import { keystoreOf, openSealedPan } from "./helpers/card-secrets.js";
import { createTestDatabase, prepareStoreAndKeys, type TestDatabase } from "./helpers/test-database.js";

const START = "2026-03-01T15:00:00.000Z";
const H = 3_600_000;
const plus = (iso: string, ms: number) => new Date(new Date(iso).getTime() + ms).toISOString();
const actor = { tenantId: "acme", subject: "batch-test" };
const clock = fixedClock("2026-03-01T08:00:00Z");
// No HTTP here (the harness builds the app): the service world only, with the harness's kind of secrets.
const JWT_SECRET = "rotation-batch-secret-long-enough-for-hs256!";
const MASTER_KEY = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

let runtime: Runtime;
let database: TestDatabase;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "cardvault-rotation-batch-"));
  database = await createTestDatabase();
  const config = loadConfig(
    {
      CARDVAULT_JWT_SECRET: JWT_SECRET,
      CARDVAULT_MASTER_KEY: MASTER_KEY,
      ...(database.url ? { CARDVAULT_DATABASE_URL: database.url } : {}),
    },
    { dataDir },
  );
  await prepareStoreAndKeys(config, clock);
  runtime = await openRuntime(config, { clock, warn: () => {} });
  await runtime.services.tenants.add({ id: "acme", bin: "400000", sandbox: true });
});

afterAll(async () => {
  await runtime?.close();
  await database?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** `count` virtual cards on a fresh test clock, all due once the clock is moved 24 h on. */
async function dueCards(count: number) {
  const { services } = runtime;
  const testClockId = (await services.testClocks.create(actor, { frozenTime: START })).id;
  const tokens: string[] = [];
  for (let i = 0; i < count; i += 50) {
    const created = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, () =>
        services.cards.create(actor, { type: "virtual", cvvRotationIntervalHours: 24, testClockId }),
      ),
    );
    tokens.push(...created.map((c) => c.publicToken));
  }
  await runtime.repos.testClocks.advance(testClockId, plus(START, 24 * H));
  const rows = await Promise.all(tokens.map((t) => runtime.repos.cards.findByToken("acme", t)));
  return { testClockId, cards: rows.map((r) => r!) };
}

async function trailsOf(cardIds: readonly string[]) {
  const db = runtime.store.db;
  const audits = await db
    .selectFrom("audit_events")
    .selectAll()
    .where("card_id", "in", cardIds)
    .where("actor", "=", SCHEDULER_SUBJECT)
    .execute();
  const events = await db
    .selectFrom("outbox_events")
    .selectAll()
    .where("card_id", "in", cardIds)
    .where("type", "=", "card.cvv.changed")
    .execute();
  return {
    audits,
    events: events.map((e) => ({ ...e, data: JSON.parse(e.payload).data as Record<string, unknown> })),
  };
}

describe("batched automatic rotations", () => {
  it("rotates every claimed card once, with one audit row and one AUTOMATIC event per rotation", async () => {
    // 620 cards in batches of 400: two batches, and a batch larger than one multi-row insert (500 rows).
    const { testClockId, cards } = await dueCards(620);
    const now = new Date(plus(START, 24 * H)); // a test clock's pass runs at the clock's time
    const rotations: number[] = [];
    for (let r = 0; r === 0 || rotations.at(-1)! > 0; r++) {
      rotations.push(await runtime.services.rotation.runDue(now, { limit: 400, testClockId }));
    }
    expect(rotations).toEqual([400, 220, 0]);

    const ids = cards.map((c) => c.id);
    const after = await runtime.store.db.selectFrom("cards").selectAll().where("id", "in", ids).execute();
    for (const card of after) {
      const before = cards.find((c) => c.id === card.id)!;
      expect(card.cvv_service_code).not.toBe(before.cvv_service_code);
      // The code it rotated away from is kept, so no later rotation brings that CVV back.
      expect(JSON.parse(card.cvv_history)).toEqual([before.cvv_service_code]);
      expect(card.last_rotated_at).toBe(plus(START, 24 * H));
      expect(card.next_rotation_at).toBe(plus(START, 48 * H));
      expect(card.last_scheduled_at).toBe(plus(START, 24 * H));
    }

    const { audits, events } = await trailsOf(ids);
    expect(audits).toHaveLength(620);
    expect(new Set(audits.map((a) => a.card_id)).size).toBe(620);
    expect(audits.every((a) => a.action === "cvv.rotate" && a.outcome === "success")).toBe(true);
    expect(events).toHaveLength(620);
    expect(new Set(events.map((e) => e.card_id)).size).toBe(620);
    for (const event of events) {
      const card = cards.find((c) => c.id === event.card_id)!;
      expect(event.data).toEqual({
        publicToken: card.public_token,
        last4: card.pan_last4,
        rotationType: "AUTOMATIC",
        operationType: "ROTATE_CVV",
        nextRotationAt: plus(START, 48 * H),
        rotationIntervalHours: 24,
      });
    }
    // No PAN in any row the batch wrote (the CVV is never passed to them at all).
    const written = JSON.stringify([audits, events]);
    for (const card of cards.slice(0, 50)) {
      const pan = openSealedPan(keystoreOf(runtime.config.dataDir, MASTER_KEY), card);
      expect(written).not.toContain(pan);
    }
  });

  it("skips only the cards changed between the claim and the batch UPDATE, leaving no trace for them", async () => {
    const { testClockId, cards } = await dueCards(12);
    const { services, store, keys, repos } = runtime;
    let changed: { forced: string; rescheduled: string } | undefined;
    // Another writer gets in after the claim: a forced rotation of one card, an interval change of another.
    const racingCards: CardRepo = {
      ...repos.cards,
      async claimDue(now, limit, clockId, tx) {
        const due = await repos.cards.claimDue(now, limit, clockId, tx);
        const [forced, rescheduled] = [due[3]!, due[7]!];
        await repos.cards.rotate(
          forced.id,
          forced,
          {
            cvv_service_code: forced.cvv_service_code === "555" ? "556" : "555",
            cvv_history: JSON.stringify([forced.cvv_service_code]),
            rotation_interval_hours: 24,
            next_rotation_at: plus(START, 48 * H),
            last_scheduled_at: plus(START, 24 * H),
            last_rotated_at: plus(START, 24 * H),
          },
          tx,
        );
        await repos.cards.setSchedule(
          rescheduled.id,
          rescheduled,
          {
            rotation_interval_hours: 6,
            next_rotation_at: plus(START, 30 * H),
            last_scheduled_at: plus(START, 24 * H),
          },
          plus(START, 24 * H),
          tx,
        );
        changed = { forced: forced.id, rescheduled: rescheduled.id };
        return due;
      },
    };
    const { rotation } = createServices({
      store,
      repos: { ...repos, cards: racingCards },
      keys,
      clock,
      rateLimits: runtime.config.rateLimits,
      reveal: revealSettings(runtime.config),
      wrongTryBudget: runtime.config.wrongTryBudget,
      webhookEndpointsPerTenant: runtime.config.webhooks.endpointsPerTenant,
      accessTokens: accessTokenSettings(runtime.config),
    });

    expect(await rotation.runDue(new Date(plus(START, 24 * H)), { limit: 100, testClockId })).toBe(10);
    const skipped = [changed!.forced, changed!.rescheduled];
    const rows = await store.db
      .selectFrom("cards")
      .selectAll()
      .where(
        "id",
        "in",
        cards.map((c) => c.id),
      )
      .execute();
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(changed!.forced)!.cvv_service_code).toMatch(/^55[56]$/);
    expect(byId.get(changed!.rescheduled)).toMatchObject({
      rotation_interval_hours: 6,
      next_rotation_at: plus(START, 30 * H),
      last_rotated_at: null,
    });
    for (const card of cards.filter((c) => !skipped.includes(c.id))) {
      expect(byId.get(card.id)!.next_rotation_at).toBe(plus(START, 48 * H));
      expect(byId.get(card.id)!.last_rotated_at).toBe(plus(START, 24 * H));
    }

    const { audits, events } = await trailsOf(cards.map((c) => c.id));
    expect(audits).toHaveLength(10);
    expect(events).toHaveLength(10);
    for (const id of skipped) {
      expect(audits.some((a) => a.card_id === id)).toBe(false);
      expect(events.some((e) => e.card_id === id)).toBe(false);
    }
    // The rescheduled card is still due on its new schedule, and the scheduler picks it up then.
    await repos.testClocks.advance(testClockId, plus(START, 30 * H));
    expect(await services.rotation.runDue(new Date(plus(START, 30 * H)), { limit: 100, testClockId })).toBe(
      1,
    );
  });

  it("rotateDue applies nothing for an empty batch or for rows whose due time moved", async () => {
    const { cards } = await dueCards(3);
    const { repos } = runtime;
    expect(await repos.cards.rotateDue([])).toEqual(new Set());
    const changes = {
      cvv_service_code: "321",
      cvv_history: "[]",
      rotation_interval_hours: 24,
      next_rotation_at: plus(START, 48 * H),
      last_scheduled_at: plus(START, 24 * H),
      last_rotated_at: plus(START, 24 * H),
    };
    const applied = await runtime.store.transaction((tx) =>
      repos.cards.rotateDue(
        cards.map((card, i) => ({
          id: card.id,
          expected: {
            version: card.version,
            dueAt: i === 1 ? plus(START, 25 * H) : card.next_rotation_at!,
          },
          changes,
        })),
        tx,
      ),
    );
    expect(applied).toEqual(new Set([cards[0]!.id, cards[2]!.id]));
    const middle = await repos.cards.findByToken("acme", cards[1]!.public_token);
    expect(middle!.cvv_service_code).toBe(cards[1]!.cvv_service_code);
  });
});
