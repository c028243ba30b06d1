// `cardvault cards import` as an operator runs it, on the real store (SQLite, and PostgreSQL in the postgres
// project): killed with SIGKILL half-way and run again, every card of the file is there exactly once; a CSV
// file with a header, its rejects file (line numbers and reasons, nothing of the lines) and the summary.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { luhnCheckDigit } from "../src/crypto/luhn.js";
import { createHarness, type Harness, TEST_MASTER_KEY } from "./helpers/harness.js";
import { cardvaultEnv, runCardvault, spawnCardvault, waitForOutput } from "./helpers/processes.js";

let h: Harness;
let env: Record<string, string>;

beforeAll(async () => {
  h = await createHarness();
  env = {
    CARDVAULT_DATA_DIR: h.dataDir,
    CARDVAULT_MASTER_KEY: TEST_MASTER_KEY,
    ...(h.config.databaseUrl ? { CARDVAULT_DATABASE_URL: h.config.databaseUrl } : {}),
  };
});
afterAll(async () => {
  await h?.close();
});

/** A Luhn-valid PAN under `bin` with account number `n`. */
const panOf = (bin: string, n: number) => {
  const body = `${bin}${String(n).padStart(9, "0")}`;
  return `${body}${luhnCheckDigit(body)}`;
};

const cardsOf = (tenant: string) =>
  h.runtime.store.db
    .selectFrom("cards")
    .select(["pan_fingerprint", "public_token"])
    .where("tenant_id", "=", tenant)
    .execute();

describe("cardvault cards import", () => {
  it("killed with SIGKILL half-way and run again: every card exactly once", async () => {
    const total = 1200;
    const file = join(h.dataDir, "cards.ndjson");
    writeFileSync(
      file,
      Array.from({ length: total }, (_, i) =>
        JSON.stringify({
          pan: panOf("400000", i),
          expiry: "3012",
          type: i % 2 ? "virtual" : "physical",
          publicToken: String(600000000 + i),
          pin: { pvki: 1, pvv: String(1000 + i).slice(-4) },
        }),
      ).join("\n"),
    );
    const args = ["cards", "import", file, "--tenant", "acme", "--batch-size", "40"];
    const first = spawnCardvault(args, env);
    await waitForOutput(first, "progress: ", 60_000);
    first.child.kill("SIGKILL");
    expect(await first.exited).toBe("SIGKILL");
    const partial = (await cardsOf("acme")).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(total);
    // Whole batches only: the one in flight was rolled back with the process.
    expect(partial % 40).toBe(0);

    const second = spawnCardvault(args, env);
    expect(await second.exited, second.output()).toBe(0);
    expect(second.output()).toContain(
      `${total} lines: ${total - partial} imported, ${partial} already present, 0 rejected`,
    );
    const cards = await cardsOf("acme");
    expect(cards.length).toBe(total);
    expect(new Set(cards.map((c) => c.pan_fingerprint)).size).toBe(total);
    expect(new Set(cards.map((c) => c.public_token))).toEqual(
      new Set(Array.from({ length: total }, (_, i) => String(600000000 + i))),
    );
    // Progress lines and summary carry counts, never a PAN.
    expect(first.output() + second.output()).not.toMatch(/400000\d{10}/);
  }, 120_000);

  it("imports a CSV file with a header; the rejects file has each bad line's number and reason, nothing else", async () => {
    const file = join(h.dataDir, "cards.csv");
    const rejects = join(h.dataDir, "rejects.tsv");
    const bad = `${panOf("510000", 2).slice(0, -1)}${(Number(panOf("510000", 2).slice(-1)) + 1) % 10}`;
    writeFileSync(
      file,
      [
        "pan,expiry,type,status,cardholderName,publicToken,pismoId,pvki,pvv",
        `${panOf("510000", 1)},3012,physical,active,"Doe, Jane",650000001,4400001,1,1234`,
        `${bad},3012,physical,active,,650000002,,,`,
        `${panOf("510000", 3)},3012,virtual,cancelled,,650000003,,,`,
        `${panOf("510000", 4)},3012,physical,active,,650000001,,,`,
      ].join("\r\n"),
    );
    // In process (the kill above needs a process; this does not): no second tsx start-up.
    const run = await runCardvault(
      ["cards", "import", file, "--tenant", "globex", "--rejects", rejects],
      cardvaultEnv(env),
    );
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.stdout + run.stderr).toContain("4 lines: 2 imported, 0 already present, 2 rejected");
    expect(readFileSync(rejects, "utf8")).toBe(
      "line\treason\n3\tpan: fails the Luhn check\n5\tpublicToken: already in use by another card\n",
    );
    const jane = await h.call("GET", "/v1/cards/650000001", undefined, {
      token: await h.token(undefined, "globex"),
    });
    expect(jane.json()).toMatchObject({
      cardholderName: "Doe, Jane",
      maskedPan: `510000******${panOf("510000", 1).slice(-4)}`,
    });
    const closed = await h.call("GET", "/v1/cards/650000003", undefined, {
      token: await h.token(undefined, "globex"),
    });
    expect(closed.json().status).toBe("closed");
  }, 60_000);
});
