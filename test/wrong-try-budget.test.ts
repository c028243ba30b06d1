// The rolling wrong-try budget (issue 13, item 2): an unblock restores a secret's try counter, but not its
// budget of wrong tries in the last 24 hours, so verify + unblock can no longer walk through every CVV or PIN.
// The attack loop of the red-team pass is replayed with the attacker's scopes only (verify and manage, no
// read), against both secrets, every unblock path (native, Thredd, Payblr), and what clears a compromise:
// a rotated CVV (forced or scheduled) or a new PIN. Time is a clock the test moves, so "rolling" is exact.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixedClock } from "../src/lib/clock.js";
import { auditActions, cardRow, expectedCvv, wrongCvv } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

const HOUR = 3_600_000;
const clock = fixedClock("2030-03-14T20:00:00.000Z");

let h: Harness;
beforeAll(async () => {
  // The budget alone: the day's unblock limit (test/rate-limit-classes.test.ts) would stop these loops first.
  h = await createHarness({
    clock,
    maxCvvTries: 3,
    maxPinTries: 3,
    env: { CARDVAULT_RATE_LIMIT_MANAGE_PER_CARD_DAY: "1000" },
  });
});
afterAll(() => h.close());

type Secret = "cvv" | "pin";
type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** A request with a token minted now (the test clock moves by hours, past any token's lifetime). */
async function as(scopes: string[] | undefined, method: Method, url: string, body?: unknown) {
  const headers: Record<string, string> = body === undefined ? {} : { "content-type": "application/json" };
  return h.call(method, url, body, { token: await h.token(scopes), headers });
}

const ATTACKER: Record<Secret, string[]> = {
  cvv: ["cvv:verify", "cvv:manage"],
  pin: ["pin:verify", "pin:manage"],
};

/** The values the attacker tries, in order, never the right one (the worst case for the attacker). */
function guesses(right: string): string[] {
  const digits = right.length;
  const all = Array.from({ length: 10 ** digits }, (_, i) => String(i).padStart(digits, "0"));
  return all.filter((g) => g !== right);
}

async function rightPin(t: string): Promise<string> {
  return ((await as(["pin:read"], "GET", `/v1/cards/${t}/pin`)).json() as { pin: string }).pin;
}

/**
 * The red-team loop: verify wrong values until Blocked, unblock, repeat — until an unblock is refused or
 * `limit` wrong tries were made (well under the per-card rate limit). Returns what it counted and the last answer.
 */
async function attack(secret: Secret, t: string, right: string, limit = 30) {
  let wrongTries = 0;
  let unblocks = 0;
  let refusedUnblock: Awaited<ReturnType<typeof as>> | undefined;
  const answers: Record<string, unknown>[] = [];
  for (const guess of guesses(right)) {
    if (wrongTries === limit) break;
    const verify = await as(ATTACKER[secret], "POST", `/v1/cards/${t}/${secret}/verify`, { [secret]: guess });
    expect(verify.statusCode).toBe(200);
    const answer = verify.json() as { result: string; status: string };
    answers.push(answer);
    expect(answer.result).toBe("mismatch");
    wrongTries++;
    if (answer.status === "Blocked") {
      const unblock = await as(ATTACKER[secret], "POST", `/v1/cards/${t}/${secret}/unblock`, {});
      if (unblock.statusCode !== 204) {
        refusedUnblock = unblock;
        break;
      }
      unblocks++;
    }
  }
  return { wrongTries, unblocks, refusedUnblock, last: answers.at(-1) };
}

/** Spends a secret's budget and checks it is compromised; returns the card's token. */
async function compromised(secret: Secret, body: Record<string, unknown> = { type: "virtual" }) {
  const { publicToken: t } = await h.createCard(body, await h.token());
  const right = secret === "cvv" ? await expectedCvv(h, t) : await rightPin(t);
  const { refusedUnblock } = await attack(secret, t, right);
  expect(refusedUnblock?.statusCode).toBe(409);
  return { t, right };
}

async function eventsOf(t: string) {
  return (await h.runtime.repos.outbox.list("acme")).filter((e) => e.payload.includes(t));
}

async function verify(secret: Secret, t: string, value: string) {
  return (await as(ATTACKER[secret], "POST", `/v1/cards/${t}/${secret}/verify`, { [secret]: value })).json();
}

describe.each(["cvv", "pin"] as const)("the wrong-try budget of the %s", (secret) => {
  it("stops verify + unblock at 10 wrong tries in 24 h: 409 secret_compromised, stays Blocked, event and audit", async () => {
    const { publicToken: t } = await h.createCard({ type: "virtual" }, await h.token());
    const right = secret === "cvv" ? await expectedCvv(h, t) : await rightPin(t);

    const run = await attack(secret, t, right);
    process.stdout.write(
      `[wrong-try budget] ${secret}: ${run.wrongTries} wrong tries and ${run.unblocks} unblocks, then ${run.refusedUnblock?.statusCode}\n`,
    );
    expect(run).toMatchObject({ wrongTries: 10, unblocks: 3 });
    expect(run.last).toEqual({ result: "mismatch", status: "Blocked", remainingTries: 0 });
    expect(run.refusedUnblock!.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(run.refusedUnblock!.json()).toMatchObject({ status: 409, code: "secret_compromised" });

    // Blocked for good: the right value answers blocked, the counter stays at 0, no unblock of any caller.
    expect(await verify(secret, t, right)).toEqual({
      result: "blocked",
      status: "Blocked",
      remainingTries: 0,
    });
    expect((await as(undefined, "POST", `/v1/cards/${t}/${secret}/unblock`, {})).statusCode).toBe(409);
    expect((await as(["cards:read"], "GET", `/v1/cards/${t}/${secret}/status`)).json()).toEqual({
      status: "Blocked",
      remainingTries: 0,
      maxTries: 3,
    });

    const types = (await eventsOf(t)).map((e) => e.type);
    expect(types.filter((type) => type.endsWith(".compromised"))).toEqual([`card.${secret}.compromised`]);
    expect(types.at(-1)).toBe(`card.${secret}.compromised`);
    const event = (await eventsOf(t)).at(-1)!;
    expect(JSON.parse(event.payload).data).toEqual({
      publicToken: t,
      reason: "wrong_try_budget_spent",
      wrongTries: 10,
      windowHours: 24,
    });

    const actions = await auditActions(h, t);
    expect(actions.filter((a) => a.startsWith(`${secret}.compromised`))).toEqual([
      `${secret}.compromised:blocked`,
    ]);
    expect(actions.filter((a) => a === `${secret}.unblock:success`)).toHaveLength(3);
    const row = await h.runtime.store.db
      .selectFrom("audit_events")
      .select("details")
      .where("public_token", "=", t)
      .where("action", "=", `${secret}.compromised`)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(row.details!)).toEqual({
      reason: "wrong_try_budget_spent",
      wrongTries: 10,
      windowHours: 24,
    });
  });

  it("still verifies the right value after unblocks below the budget, and a match gives no tries back", async () => {
    const { publicToken: t } = await h.createCard({ type: "virtual" }, await h.token());
    const right = secret === "cvv" ? await expectedCvv(h, t) : await rightPin(t);
    const below = await attack(secret, t, right, 9);
    expect(below).toMatchObject({ wrongTries: 9, unblocks: 3, refusedUnblock: undefined });
    expect(await verify(secret, t, right)).toEqual({
      result: "match",
      status: "Unblocked",
      remainingTries: 3,
    });
    expect(await verify(secret, t, right)).toEqual({
      result: "match",
      status: "Unblocked",
      remainingTries: 3,
    });

    // The tenth wrong try of the day spends the budget, whatever matched in between.
    expect(await verify(secret, t, guesses(right)[9]!)).toEqual({
      result: "mismatch",
      status: "Blocked",
      remainingTries: 0,
    });
    expect((await as(ATTACKER[secret], "POST", `/v1/cards/${t}/${secret}/unblock`, {})).statusCode).toBe(409);
  });

  it("rolls: a wrong try counts for the 24 hours after it, across midnight, not per calendar day", async () => {
    // 9 wrong tries at 20:00; at 08:00 the next day the tenth is within the last 24 h.
    const { publicToken: a } = await h.createCard({ type: "virtual" }, await h.token());
    const rightA = secret === "cvv" ? await expectedCvv(h, a) : await rightPin(a);
    expect(await attack(secret, a, rightA, 9)).toMatchObject({ wrongTries: 9, refusedUnblock: undefined });
    clock.advance(12 * HOUR);
    expect((await verify(secret, a, guesses(rightA)[500]!)).status).toBe("Blocked");
    expect((await as(ATTACKER[secret], "POST", `/v1/cards/${a}/${secret}/unblock`, {})).statusCode).toBe(409);

    // 9 wrong tries now; 24 hours later they no longer count: 9 more pass, the tenth of the new 24 h spends it.
    const { publicToken: b } = await h.createCard({ type: "virtual" }, await h.token());
    const rightB = secret === "cvv" ? await expectedCvv(h, b) : await rightPin(b);
    expect(await attack(secret, b, rightB, 9)).toMatchObject({ wrongTries: 9, refusedUnblock: undefined });
    clock.advance(24 * HOUR);
    expect(await attack(secret, b, rightB, 9)).toMatchObject({ wrongTries: 9, refusedUnblock: undefined });
    expect(await attack(secret, b, rightB)).toMatchObject({ wrongTries: 1 });
    expect((await as(ATTACKER[secret], "POST", `/v1/cards/${b}/${secret}/unblock`, {})).statusCode).toBe(409);
  });
});

describe("what clears a compromise", () => {
  it("a forced CVV rotation: unblock works again, the new CVV verifies, the budget starts afresh", async () => {
    const { t } = await compromised("cvv");
    expect((await as(["cvv:manage"], "POST", `/v1/cards/${t}/cvv/rotate`, {})).statusCode).toBe(200);
    expect((await as(ATTACKER.cvv, "POST", `/v1/cards/${t}/cvv/unblock`, {})).statusCode).toBe(204);
    const right = await expectedCvv(h, t);
    expect(await verify("cvv", t, right)).toEqual({
      result: "match",
      status: "Unblocked",
      remainingTries: 3,
    });
    expect(await attack("cvv", t, right, 9)).toMatchObject({ wrongTries: 9, refusedUnblock: undefined });
    const row = await cardRow(h, t);
    expect(row.cvv_compromised_at).toBeNull();
  });

  it("a scheduled CVV rotation", async () => {
    const { t } = await compromised("cvv");
    expect(
      (await as(["cvv:manage"], "PUT", `/v1/cards/${t}/cvv/rotation`, { intervalHours: 1 })).statusCode,
    ).toBe(200);
    clock.advance(2 * HOUR);
    expect(await h.runtime.services.rotation.runDue(clock.now(), { limit: 100 })).toBeGreaterThanOrEqual(1);
    expect((await as(ATTACKER.cvv, "POST", `/v1/cards/${t}/cvv/unblock`, {})).statusCode).toBe(204);
    expect(await verify("cvv", t, await expectedCvv(h, t))).toMatchObject({ result: "match" });
  });

  it("a new PIN: the counter is full, the new PIN verifies, the budget starts afresh", async () => {
    const { t } = await compromised("pin");
    expect((await as(["pin:write"], "PUT", `/v1/cards/${t}/pin`, { pin: "2468" })).statusCode).toBe(204);
    expect(await verify("pin", t, "2468")).toEqual({
      result: "match",
      status: "Unblocked",
      remainingTries: 3,
    });
    expect(await attack("pin", t, "2468", 9)).toMatchObject({ wrongTries: 9, refusedUnblock: undefined });
    expect((await cardRow(h, t)).pin_compromised_at).toBeNull();
  });

  it("nothing for a physical card's CVV: it cannot rotate, so the card must be reissued", async () => {
    const { t } = await compromised("cvv", { type: "physical" });
    const rotate = await as(["cvv:manage"], "POST", `/v1/cards/${t}/cvv/rotate`, {});
    expect(rotate.json()).toMatchObject({ status: 409, code: "card_not_virtual" });
    expect((await as(ATTACKER.cvv, "POST", `/v1/cards/${t}/cvv/unblock`, {})).json()).toMatchObject({
      code: "secret_compromised",
    });
  });

  it("unblocking the other secret is not refused: the budget is per card and secret", async () => {
    const { t } = await compromised("cvv");
    expect((await as(ATTACKER.pin, "POST", `/v1/cards/${t}/pin/unblock`, {})).statusCode).toBe(204);
  });
});

describe("the dialects' unblocks", () => {
  const json = { "content-type": "application/json" };
  it("answer 409 secret_compromised in Thredd's and Payblr's problem shape", async () => {
    const cvv = (await compromised("cvv")).t;
    const pin = (await compromised("pin")).t;
    const cases: [Secret, Method, string, unknown][] = [
      ["cvv", "POST", `/api/v1/cards/${cvv}/cvv`, undefined],
      ["cvv", "PUT", `/api/v1/cards/${cvv}/cvv/status`, { status: "Unblocked" }],
      ["cvv", "PUT", `/thr/thredd/card-cvv/${cvv}/cvv/status`, undefined],
      ["pin", "POST", `/api/v1/cards/${pin}/pin/unblock`, {}],
      ["pin", "POST", `/thr/thredd/card-pin/${pin}/pin/unblock`, {}],
    ];
    for (const [secret, method, url, body] of cases) {
      const response = await h.call(method, url, body, {
        token: await h.token(ATTACKER[secret]),
        headers: json,
      });
      expect(response.statusCode, url).toBe(409);
      expect(response.headers["content-type"], url).toMatch(/application\/problem\+json/);
      expect(response.json(), url).toMatchObject({
        status: 409,
        code: "secret_compromised",
        errors: { resource: [expect.stringMatching(/wrong tries/)] },
      });
    }
    // Blocking stays possible (the secret is Blocked already).
    const block = await as(ATTACKER.cvv, "PUT", `/api/v1/cards/${cvv}/cvv/status`, { status: "Blocked" });
    expect(block.statusCode).toBe(204);
  });
});

describe("an unblock racing the wrong try that spends the budget", () => {
  it("never leaves the secret unblocked: either order ends compromised at 0", async () => {
    const outcomes = new Set<number>();
    for (let round = 0; round < 8; round++) {
      const { publicToken: t } = await h.createCard({ type: "virtual" }, await h.token());
      const right = await expectedCvv(h, t);
      expect(await attack("cvv", t, right, 9)).toMatchObject({ wrongTries: 9, refusedUnblock: undefined });
      const [tenth, unblock] = await Promise.all([
        as(ATTACKER.cvv, "POST", `/v1/cards/${t}/cvv/verify`, { cvv: guesses(right)[9] }),
        as(ATTACKER.cvv, "POST", `/v1/cards/${t}/cvv/unblock`, {}),
      ]);
      expect(tenth.json()).toEqual({ result: "mismatch", status: "Blocked", remainingTries: 0 });
      expect([204, 409]).toContain(unblock.statusCode);
      outcomes.add(unblock.statusCode);
      const row = await cardRow(h, t);
      expect(row.cvv_tries_remaining).toBe(0);
      expect(row.cvv_compromised_at).not.toBeNull();
    }
    process.stdout.write(`[wrong-try budget] racing unblocks answered ${[...outcomes].join(" and ")}\n`);
  });
});

describe("concurrent wrong tries across the budget", () => {
  let wide: Harness;
  beforeAll(async () => {
    // A counter wider than the budget, so only the budget blocks.
    wide = await createHarness({ maxCvvTries: 99 });
    await wide.app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(() => wide.close());

  it("count exactly: 30 at once give 10 mismatches, 20 blocked, one compromise", async () => {
    const address = wide.app.server.address();
    const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    const { publicToken: t } = await wide.createCard();
    const token = await wide.token(ATTACKER.cvv);
    const cvv = await wrongCvv(wide, t);
    const answers = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const response = await fetch(`${base}/v1/cards/${t}/cvv/verify`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ cvv }),
        });
        expect(response.status).toBe(200);
        return ((await response.json()) as { result: string }).result;
      }),
    );
    expect(answers.filter((a) => a === "mismatch")).toHaveLength(10);
    expect(answers.filter((a) => a === "blocked")).toHaveLength(20);
    const events = (await wide.runtime.repos.outbox.list("acme")).filter((e) => e.payload.includes(t));
    expect(events.filter((e) => e.type === "card.cvv.compromised")).toHaveLength(1);
    const row = await wide.runtime.store.db
      .selectFrom("cards")
      .select(["cvv_tries_remaining", "cvv_compromised_at"])
      .where("public_token", "=", t)
      .executeTakeFirstOrThrow();
    expect(row.cvv_tries_remaining).toBe(0);
    expect(row.cvv_compromised_at).not.toBeNull();
  });
});
