// Card state changes racing each other over a real port, many rounds each: whatever the interleaving, the
// outcome is one that some serial order of the same requests would give. Each family below once lost a write
// (a service read the card outside its transaction and wrote it back unguarded): a closed card came back,
// a rotation wrote a schedule onto a closed card, an unblock recorded a count it had not replaced, a PIN
// verify matched the PIN a concurrent change had just replaced.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wrongCvv } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

const ROUNDS = 40;
const MAX_TRIES = 3;
/** More PIN tries than the round makes, so the new PIN still verifies at the end of every round. */
const MAX_PIN_TRIES = 5;

let h: Harness;
let base: string;
let token: string;
beforeAll(async () => {
  h = await createHarness({ maxCvvTries: MAX_TRIES, maxPinTries: MAX_PIN_TRIES });
  await h.app.listen({ host: "127.0.0.1", port: 0 });
  const address = h.app.server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  token = await h.token();
});
afterAll(() => h.close());

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** One request over the port; the answers of a round are collected with Promise.all so they overlap. */
async function send(method: string, path: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function auditOf(publicToken: string, action: string) {
  const rows = await h.runtime.store.db
    .selectFrom("audit_events")
    .select(["outcome", "details"])
    .where("public_token", "=", publicToken)
    .where("action", "=", action)
    .execute();
  return rows.map((r) => ({ outcome: r.outcome, details: JSON.parse(r.details ?? "{}") }));
}

async function cardRowOf(publicToken: string) {
  return h.runtime.store.db
    .selectFrom("cards")
    .selectAll()
    .where("public_token", "=", publicToken)
    .executeTakeFirstOrThrow();
}

describe("card state changes racing each other", () => {
  it("close against suspend and activate: a closed card stays closed", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { publicToken } = await h.createCard();
      const path = `/v1/cards/${publicToken}`;
      const [close, ...others] = await Promise.all([
        send("PATCH", path, { status: "closed" }),
        send("PATCH", path, { status: "suspended" }),
        send("PATCH", path, { status: "active" }),
        send("PATCH", path, { status: "suspended" }),
      ]);
      expect(close!.status).toBe(200);
      for (const other of others) {
        expect([200, 409]).toContain(other.status);
        if (other.status === 409) expect(other.body.code).toBe("invalid_state_transition");
      }
      expect((await cardRowOf(publicToken)).status).toBe("closed");
      // Every change that answered 200 was audited with the status it really changed from.
      const changes = await auditOf(publicToken, "card.update");
      expect(changes).toHaveLength(1 + others.filter((o) => o.status === 200).length);
      expect(changes.filter((c) => c.details.fromStatus === "closed")).toHaveLength(0);
    }
  });

  it("rotate against close: a closed card has no rotation due and no rotation after it closed", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { publicToken } = await h.createCard({ type: "virtual", cvvRotationIntervalHours: 24 });
      const path = `/v1/cards/${publicToken}`;
      const [rotate, rotateAgain, close] = await Promise.all([
        send("POST", `${path}/cvv/rotate`, {}),
        send("POST", `${path}/cvv/rotate`, {}),
        send("PATCH", path, { status: "closed" }),
      ]);
      expect(close.status).toBe(200);
      for (const r of [rotate, rotateAgain]) {
        expect([200, 201, 409]).toContain(r.status);
        if (r.status === 409) expect(r.body.code).toBe("card_closed");
      }
      const row = await cardRowOf(publicToken);
      expect(row.status).toBe("closed");
      expect(row.next_rotation_at).toBeNull();
      const rotations = await auditOf(publicToken, "cvv.rotate");
      expect(rotations).toHaveLength([rotate, rotateAgain].filter((r) => r.status < 300).length);
    }
  });

  it("unblock against wrong CVV tries: every unblock records the count it replaced", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { publicToken } = await h.createCard();
      const path = `/v1/cards/${publicToken}/cvv`;
      const cvv = await wrongCvv(h, publicToken);
      const answers = await Promise.all([
        send("POST", `${path}/verify`, { cvv }),
        send("POST", `${path}/verify`, { cvv }),
        send("POST", `${path}/unblock`),
        send("POST", `${path}/verify`, { cvv }),
        send("POST", `${path}/verify`, { cvv }),
        send("POST", `${path}/verify`, { cvv }),
      ]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 204]);
      const mismatches = answers.filter((a) => a.body.result === "mismatch").length;
      const [unblock] = await auditOf(publicToken, "cvv.unblock");
      const replaced = Number(unblock!.details.previousRemainingTries);
      // Serially: the tries before the unblock took the count from MAX to `replaced`, the rest from MAX on.
      const after = mismatches - (MAX_TRIES - replaced);
      expect(after).toBeGreaterThanOrEqual(0);
      expect((await cardRowOf(publicToken)).cvv_tries_remaining).toBe(MAX_TRIES - after);
    }
  });

  it("PIN set against PIN verify: a try with the old PIN never matches after the change", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { publicToken } = await h.createCard();
      const path = `/v1/cards/${publicToken}/pin`;
      expect((await send("PUT", path, { pin: "1111" })).status).toBe(204);
      const [set, ...verifies] = await Promise.all([
        send("PUT", path, { pin: "2222" }),
        send("POST", `${path}/verify`, { pin: "1111" }),
        send("POST", `${path}/verify`, { pin: "1111" }),
        send("POST", `${path}/verify`, { pin: "1111" }),
      ]);
      expect(set.status).toBe(204);
      // Serially every match with the old PIN comes before the change, every mismatch after it: the count
      // the change restored lost exactly one try per mismatch.
      const mismatches = verifies.filter((v) => v.body.result === "mismatch").length;
      expect((await cardRowOf(publicToken)).pin_tries_remaining).toBe(MAX_PIN_TRIES - mismatches);
      const verified = await send("POST", `${path}/verify`, { pin: "2222" });
      expect(verified.body.result).toBe("match");
    }
  });
});
