// A card's PAN and public token are drawn at random and the store's unique indexes refuse one already taken
// (no look-up first): the creation draws again, and gives up with a 503 only after ten draws, writing nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KeyProvider } from "../src/keys/key-provider.js";
import { systemClock } from "../src/lib/clock.js";
import { accessTokenSettings, createServices, revealSettings } from "../src/runtime.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

const actor = { tenantId: "acme", subject: "draws-test" };

/** The harness's services over a provider whose next `taken` PAN draws come out as an existing card's PAN. */
function servicesDrawing(taken: () => boolean, existingFingerprint: string) {
  const real = h.runtime.keys;
  let draws = 0;
  const keys: KeyProvider = Object.create(real);
  keys.issuePan = async (request) => {
    draws++;
    const issued = await real.issuePan(request);
    return taken() ? { ...issued, fingerprint: existingFingerprint } : issued;
  };
  const services = createServices({
    store: h.runtime.store,
    repos: h.runtime.repos,
    keys,
    clock: systemClock,
    rateLimits: h.config.rateLimits,
    reveal: revealSettings(h.config),
    wrongTryBudget: h.config.wrongTryBudget,
    webhookEndpointsPerTenant: h.config.webhooks.endpointsPerTenant,
    accessTokens: accessTokenSettings(h.config),
  });
  return { services, draws: () => draws };
}

async function cardRows() {
  return h.runtime.store.db.selectFrom("cards").select(["public_token", "pan_fingerprint"]).execute();
}

describe("card creation draws again when the PAN is taken", () => {
  it("creates the card on the next draw: one card, its own PAN, one audit row", async () => {
    const first = await h.createCard();
    const [existing] = await cardRows();
    let calls = 0;
    const { services, draws } = servicesDrawing(() => ++calls === 1, existing!.pan_fingerprint);
    const card = await services.cards.create(actor, { type: "virtual" });
    expect(draws()).toBe(2);
    const rows = await cardRows();
    expect(rows).toHaveLength(2);
    const created = rows.find((r) => r.public_token === card.publicToken)!;
    expect(created.pan_fingerprint).not.toBe(existing!.pan_fingerprint);
    expect(card.publicToken).not.toBe(first.publicToken);
    const audited = await h.runtime.store.db
      .selectFrom("audit_events")
      .select("action")
      .where("action", "=", "card.create")
      .execute();
    expect(audited).toHaveLength(2);
    // The card answers like any other.
    const read = await h.call("GET", `/v1/cards/${card.publicToken}/cvv`);
    expect(read.statusCode).toBe(200);
  });

  it("answers 503 after ten taken draws and writes nothing", async () => {
    const before = await cardRows();
    const { services, draws } = servicesDrawing(() => true, before[0]!.pan_fingerprint);
    await expect(services.cards.create(actor, { type: "virtual" })).rejects.toMatchObject({
      code: "service_unavailable",
    });
    expect(draws()).toBe(10);
    expect(await cardRows()).toHaveLength(before.length);
  });
});
