// Online key rotation: `cardvault keys rotate` adds pan-data/pin-storage versions and re-encrypts every card in
// batches while a running `serve` answers reads and verifies under load — no failed request, every card sealed
// under the new key ids afterwards, the old versions retired. CVK rotation: new cards only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKeystore } from "../src/keys/keystore-file.js";
import { cardvaultEnv, runCardvault, spawnCardvault } from "./helpers/processes.js";
import { createServedWorld, request, SERVED_MASTER_KEY, type ServedWorld } from "./helpers/served.js";

let world: ServedWorld;
let base: string;
let token: string;
const CARDS = 300;
const cards: { token: string; cvv: string; pin: string }[] = [];

beforeAll(async () => {
  world = await createServedWorld({
    env: { CARDVAULT_RATE_LIMIT_PER_CARD: "100000", CARDVAULT_RATE_LIMIT_PER_TENANT: "1000000" },
    tenants: [{ id: "acme", maxCvvTries: 9, maxPinTries: 9 }],
  });
  // The cards are seeded through the services in this process while `serve` starts (it reads them from the
  // shared store): seeding is not what is tested, and the tsx start-up of `serve` is otherwise waited for alone.
  const serving = world.serve();
  const actor = { tenantId: "acme", subject: "key-rotation" };
  const { services } = world.runtime;
  for (let i = 0; i < CARDS; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: 50 }, async (_, j) => {
        const { publicToken } = await services.cards.create(actor, { type: "virtual" });
        const pin = String(1000 + i + j);
        await services.pin.set(actor, publicToken, pin);
        return { token: publicToken, cvv: (await services.cvv.get(actor, publicToken)).cvv, pin };
      }),
    );
    cards.push(...batch);
  }
  ({ base } = await serving);
  token = await world.token();
}, 120_000);
afterAll(() => world?.close());

const keyIdOf = (sealed: string) => sealed.split(":")[1];

describe("keys rotate, online", () => {
  it("re-encrypts every PAN and PIN block under load with no failed request, then retires the old keys", async () => {
    let stop = false;
    const failures: string[] = [];
    let requests = 0;
    const created: string[] = [];
    const worker = async (n: number) => {
      for (let i = n; !stop; i += 7) {
        const c = cards[i % cards.length]!;
        const answers = await Promise.all([
          request(base, token, "POST", `/v1/cards/${c.token}/cvv/verify`, { cvv: c.cvv }),
          request(base, token, "POST", `/v1/cards/${c.token}/pin/verify`, { pin: c.pin }),
          request(base, token, "GET", `/v1/cards/${c.token}/pin`),
        ]);
        requests += answers.length;
        const [cvv, pin, read] = answers;
        if (cvv!.status !== 200 || cvv!.body.result !== "match") failures.push(`cvv ${cvv!.status}`);
        if (pin!.status !== 200 || pin!.body.result !== "match") failures.push(`pin ${pin!.status}`);
        if (read!.status !== 200 || read!.body.pin !== c.pin) failures.push(`pin read ${read!.status}`);
        if (i % 5 === 0) {
          const card = await request(base, token, "POST", "/v1/cards", { type: "virtual" });
          requests++;
          if (card.status !== 201) failures.push(`create ${card.status}`);
          else created.push(card.body.publicToken as string);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 6 }, (_, n) => worker(n)));
    const rotate = spawnCardvault(["keys", "rotate", "--batch-size", "25", "--grace-ms", "1500"], world.env);
    const code = await rotate.exited;
    stop = true;
    await load;
    expect(code, rotate.output()).toBe(0);
    expect(rotate.output()).toMatch(
      /re-encrypted \d+ cards; retired (pan-data-v1, pin-storage-v1|pin-storage-v1, pan-data-v1)/,
    );
    expect(created.length).toBeGreaterThan(0); // cards created while the rotation ran are covered too
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(100);
    console.info(
      `[key rotation] ${requests} requests during the rotation, ${failures.length} failed; ${created.length} cards created meanwhile`,
    );

    const rows = await world.runtime.store.db
      .selectFrom("cards")
      .select(["pan_sealed", "pin_sealed"])
      .execute();
    expect(rows.length).toBe(CARDS + created.length);
    expect(rows.filter((r) => keyIdOf(r.pan_sealed) !== "pan-data-v2")).toEqual([]);
    expect(rows.filter((r) => keyIdOf(r.pin_sealed) !== "pin-storage-v2")).toEqual([]);
    const keys = loadKeystore(`${world.dataDir}/keystore.json`, Buffer.from(SERVED_MASTER_KEY, "hex"));
    expect(
      keys
        .filter((k) => k.retired)
        .map((k) => k.id)
        .sort(),
    ).toEqual(["pan-data-v1", "pin-storage-v1"]);
    expect(keys.find((k) => k.id === "pan-data-v2")?.active).toBe(true);

    // Every card still answers with its own CVV and PIN, through the server that never restarted.
    // Fifty cards at a time: each answer is compared with that card's own CVV and PIN.
    for (let i = 0; i < cards.length; i += 50) {
      const answers = await Promise.all(
        cards.slice(i, i + 50).map(async (c) => {
          const [cvv, pin] = await Promise.all([
            request(base, token, "GET", `/v1/cards/${c.token}/cvv`),
            request(base, token, "GET", `/v1/cards/${c.token}/pin`),
          ]);
          return [c.token, cvv.body.cvv, pin.body.pin];
        }),
      );
      expect(answers).toEqual(cards.slice(i, i + 50).map((c) => [c.token, c.cvv, c.pin]));
    }
    const audit = await world.runtime.store.db
      .selectFrom("audit_events")
      .select("details")
      .where("action", "=", "keys.reencrypt")
      .execute();
    expect(audit.reduce((n, a) => n + (JSON.parse(a.details!).cards as number), 0)).toBeGreaterThanOrEqual(
      CARDS,
    );
  }, 120_000);

  it("rotates the CVK for new cards only: existing cards keep their CVK and CVV", async () => {
    const before = cards[0]!;
    const rotate = await runCardvault(["keys", "rotate", "--type", "cvk"], cardvaultEnv(world.env));
    expect(rotate.code, rotate.stdout + rotate.stderr).toBe(0);
    const cvkOf = async (publicToken: string) =>
      (
        await world.runtime.store.db
          .selectFrom("cards")
          .select("cvk_id")
          .where("public_token", "=", publicToken)
          .executeTakeFirstOrThrow()
      ).cvk_id;
    // The server checks the keystore at most once a second: new cards get the new CVK once it has (cards made
    // before that get the old one, as any card made before the rotation).
    const deadline = Date.now() + 5_000;
    const createCard = async () => {
      const created = await request(base, token, "POST", "/v1/cards", { type: "virtual" });
      expect(created.status).toBe(201);
      return created.body.publicToken as string;
    };
    let fresh = await createCard();
    while ((await cvkOf(fresh)) !== "cvk-v2" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      fresh = await createCard();
    }
    expect(await cvkOf(fresh)).toBe("cvk-v2");
    expect(await cvkOf(before.token)).toBe("cvk-v1");
    expect((await request(base, token, "GET", `/v1/cards/${before.token}/cvv`)).body.cvv).toBe(before.cvv);
    const verify = await request(base, token, "POST", `/v1/cards/${before.token}/cvv/verify`, {
      cvv: before.cvv,
    });
    expect(verify.body.result).toBe("match");
  }, 60_000);
});

describe("keys rotate --no-reencrypt, then keys reencrypt (one keystore copy per host)", () => {
  it("adds versions without touching data; reencrypt then moves every card and retires the previous versions", async () => {
    // Both commands in process: the server is the other process here.
    const rotate = await runCardvault(["keys", "rotate", "--no-reencrypt"], cardvaultEnv(world.env));
    expect(rotate.code, rotate.stdout + rotate.stderr).toBe(0);
    expect(rotate.stdout + rotate.stderr).not.toContain("re-encrypted");
    const sealedWith = async () =>
      new Set(
        (await world.runtime.store.db.selectFrom("cards").select("pan_sealed").execute()).map((r) =>
          keyIdOf(r.pan_sealed),
        ),
      );
    expect(await sealedWith()).toEqual(new Set(["pan-data-v2"]));
    const reencrypt = await runCardvault(["keys", "reencrypt", "--grace-ms", "0"], cardvaultEnv(world.env));
    expect(reencrypt.code, reencrypt.stdout + reencrypt.stderr).toBe(0);
    expect(await sealedWith()).toEqual(new Set(["pan-data-v3"]));
    const keys = loadKeystore(`${world.dataDir}/keystore.json`, Buffer.from(SERVED_MASTER_KEY, "hex"));
    expect(keys.filter((k) => k.type === "pan-data").map((k) => [k.id, k.active, k.retired])).toEqual([
      ["pan-data-v1", false, true],
      ["pan-data-v2", false, true],
      ["pan-data-v3", true, false],
    ]);
    expect((await request(base, token, "GET", `/v1/cards/${cards[1]!.token}/pin`)).body.pin).toBe(
      cards[1]!.pin,
    );
  }, 60_000);
});
