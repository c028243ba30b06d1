// SQLite beside other writers: `serve` answers CVV verifies and status reads under steady load, its rotation
// scheduler claiming every 10 ms (a transaction whose first statement is a read), while other processes on the
// same data directory commit: `cardvault tenants add` a few times and `cardvault keys rotate`, whose
// re-encryption of every card runs in the CLI process, batch by batch. Every request is answered 200 and the
// re-encryption completes: a group takes the write lock at BEGIN and waits for another process's, where a
// deferred BEGIN failed the group's writes with SQLITE_BUSY(_SNAPSHOT). SQLite only: PostgreSQL has no file lock.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnCardvault } from "../helpers/processes.js";
import { createServedWorld, request, type ServedWorld } from "../helpers/served.js";
import { testStore } from "../helpers/test-database.js";

const CARDS = 600;
let world: ServedWorld;
const cards: { token: string; cvv: string }[] = [];

describe.skipIf(testStore !== "sqlite")(
  "SQLite: serve beside other processes writing to the same file",
  () => {
    beforeAll(async () => {
      world = await createServedWorld({
        env: { CARDVAULT_RATE_LIMIT_PER_CARD: "100000", CARDVAULT_RATE_LIMIT_PER_TENANT: "1000000" },
        tenants: [{ id: "acme", maxCvvTries: 99 }],
      });
      const actor = { tenantId: "acme", subject: "second-writer" };
      const { services } = world.runtime;
      for (let i = 0; i < CARDS; i += 50) {
        const batch = await Promise.all(
          Array.from({ length: 50 }, async () => {
            const { publicToken } = await services.cards.create(actor, { type: "virtual" });
            return { token: publicToken, cvv: (await services.cvv.get(actor, publicToken)).cvv };
          }),
        );
        cards.push(...batch);
      }
    }, 60_000);
    afterAll(() => world?.close());

    it("answers every request while `tenants add` and `keys rotate` commit to the file", async () => {
      const { base } = await world.serve({ CARDVAULT_JOBS: "on", CARDVAULT_JOB_INTERVAL_MS: "10" });
      const token = await world.token();
      let stop = false;
      let requests = 0;
      const failures: string[] = [];
      const client = async (n: number) => {
        for (let i = n; !stop; i += 8) {
          const c = cards[i % cards.length]!;
          const status = i % 10 === 0;
          const r = status
            ? await request(base, token, "GET", `/v1/cards/${c.token}/cvv/status`)
            : await request(base, token, "POST", `/v1/cards/${c.token}/cvv/verify`, { cvv: c.cvv });
          requests++;
          if (r.status !== 200 || (!status && r.body.result !== "match"))
            failures.push(`${status ? "status" : "verify"} ${r.status} ${String(r.body.detail ?? "")}`);
        }
      };
      const load = Promise.all(Array.from({ length: 8 }, (_, n) => client(n)));

      const cli = async (args: string[]) => {
        const run = spawnCardvault(args, world.env);
        const code = await run.exited;
        return { code, output: run.output() };
      };
      const started = performance.now();
      const [rotation, added] = await Promise.all([
        cli(["keys", "rotate", "--batch-size", "20", "--grace-ms", "300"]),
        (async () => {
          const codes = [];
          for (const id of ["beside-1", "beside-2", "beside-3"])
            codes.push(await cli(["tenants", "add", id]));
          return codes;
        })(),
      ]);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      stop = true;
      await load;

      expect(added.map((a) => a.code)).toEqual([0, 0, 0]);
      expect(rotation.code, rotation.output).toBe(0);
      expect(rotation.output).toMatch(new RegExp(`re-encrypted ${CARDS} cards; retired \\S`));
      expect(requests).toBeGreaterThan(200);
      expect(failures).toEqual([]);
      const left = await world.runtime.store.db
        .selectFrom("cards")
        .select((eb) => eb.fn.countAll().as("n"))
        .where("pan_sealed", "not like", "v1:pan-data-v2:%")
        .executeTakeFirstOrThrow();
      expect(Number(left.n)).toBe(0);
      console.info(
        `[faults] second writer: ${requests} requests in ${seconds} s beside tenants add ×3 and keys rotate, 0 failed`,
      );
    }, 60_000);
  },
);
