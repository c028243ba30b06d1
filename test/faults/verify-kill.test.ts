// SIGKILL `serve` in the middle of a burst of wrong verifications: every mismatch a client was told about is
// counted in the database (the counter step and the answer share one committed transaction), so the counters
// are never lower than the mismatches answered.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServedWorld, request, type ServedWorld } from "../helpers/served.js";
import { wrongCvvFor } from "../helpers/served-secrets.js";

let world: ServedWorld;
const MAX = 99;

beforeAll(async () => {
  // A wrong-try budget above the counter: the burst tests the counter alone, up to its 99 tries a card.
  world = await createServedWorld({
    env: { CARDVAULT_WRONG_TRY_BUDGET: "100" },
    tenants: [{ id: "acme", maxCvvTries: MAX, maxPinTries: MAX }],
  });
}, 60_000);
afterAll(() => world?.close());

describe("SIGKILL during a burst of verifications", () => {
  it("leaves every counter at least as far down as the mismatches answered", async () => {
    const { base, process } = await world.serve();
    const token = await world.token();
    const cards: { token: string; wrong: string }[] = [];
    for (let i = 0; i < 20; i++) {
      const t = (await request(base, token, "POST", "/v1/cards", { type: "virtual" })).body
        .publicToken as string;
      cards.push({ token: t, wrong: await wrongCvvFor(world.runtime, t) });
    }
    const answered = new Map<string, number>();
    let sent = 0;
    let refused = 0;
    let mismatchesAnswered = 0;
    // The kill lands once the burst is well under way (as many mismatches answered as 16 clients send in a few
    // rounds), not after a fixed time: requests are in flight on every connection when it does.
    const KILL_AFTER = 100;
    // Until the server is gone: the cap only bounds a run where the kill never lands.
    const burst = Array.from({ length: 16 }, async (_, w) => {
      for (let i = w; i < 200_000; i += 16) {
        const c = cards[i % cards.length]!;
        sent++;
        const r = await request(base, token, "POST", `/v1/cards/${c.token}/cvv/verify`, { cvv: c.wrong });
        if (r.status === 0) {
          refused++;
          return; // the server is gone
        }
        if (r.body.result === "mismatch") {
          answered.set(c.token, (answered.get(c.token) ?? 0) + 1);
          if (++mismatchesAnswered === KILL_AFTER) process.child.kill("SIGKILL");
        }
      }
    });
    await Promise.all(burst);
    expect(await process.exited).toBe("SIGKILL");
    expect(refused).toBeGreaterThan(0); // the kill landed mid-burst

    const rows = await world.runtime.store.db
      .selectFrom("cards")
      .select(["public_token", "cvv_tries_remaining"])
      .execute();
    let mismatches = 0;
    for (const row of rows) {
      const told = answered.get(row.public_token) ?? 0;
      mismatches += told;
      expect(MAX - row.cvv_tries_remaining, row.public_token).toBeGreaterThanOrEqual(told);
    }
    expect(mismatches).toBeGreaterThan(0);
    console.info(
      `[faults] verify burst: ${sent} sent, ${mismatches} mismatches answered before SIGKILL; counters hold`,
    );
  }, 60_000);
});
