// Card import scenario (issue 15): N cards from an NDJSON file through the import service, as `cardvault cards
// import` runs it (lines read, checked, PANs sealed and fingerprinted, PVV-only PINs, duplicate checks, batches
// of 500 in transactions with an audit row per card), against a baseline that reads and parses the same file
// and inserts the same rows and audit rows in the same batches with no cryptography and no checks. SQLite and a
// fresh PostgreSQL database. Invariant: every round starts from an empty tenant; subject and baseline alternate.
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { luhnCheckDigit } from "../src/crypto/luhn.js";
import { parseNdjsonLine } from "../src/domain/card-import.js";
import { systemClock } from "../src/lib/clock.js";
import { uuidv7 } from "../src/lib/ids.js";
import type { Runtime } from "../src/runtime.js";
import { DEFAULT_IMPORT_BATCH, type SourceLine } from "../src/services/card-import.js";
import type { NewCardRow } from "../src/store/schema.js";
import { withStore } from "./rotation-bench.js";
import { finish, median, type ScenarioResult } from "./stats.js";

export interface ImportBenchOptions {
  cards: number;
  rounds: number;
  postgresUrl?: string;
}

const TENANT = "bench-import";

function writeCardFile(file: string, n: number): void {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const body = `400000${String(i).padStart(9, "0")}`;
    lines.push(
      JSON.stringify({
        pan: `${body}${luhnCheckDigit(body)}`,
        expiry: "3012",
        serviceCode: "101",
        type: i % 2 ? "virtual" : "physical",
        publicToken: String(100_000_000 + i),
        pin: { pvki: 1, pvv: String(i % 10_000).padStart(4, "0") },
        cvvTriesRemaining: 3,
        pinTriesRemaining: 3,
      }),
    );
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
}

async function* readLines(file: string): AsyncIterable<SourceLine> {
  let number = 0;
  for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    yield { number: ++number, text };
  }
}

async function empty(runtime: Runtime): Promise<void> {
  await runtime.store.db.deleteFrom("cards").where("tenant_id", "=", TENANT).execute();
  await runtime.store.db.deleteFrom("audit_events").where("tenant_id", "=", TENANT).execute();
}

/** The import service, as the CLI runs it: cards per second. */
async function subject(runtime: Runtime, file: string, n: number): Promise<number> {
  await empty(runtime);
  const started = performance.now();
  const counts = await runtime.services.cardImport.run(
    { tenantId: TENANT, subject: "bench" },
    readLines(file),
    {
      parse: parseNdjsonLine,
    },
  );
  const seconds = (performance.now() - started) / 1000;
  if (counts.imported !== n) throw new Error(`import: ${counts.imported} of ${n} imported`);
  return n / seconds;
}

/** The same file read and parsed, the same rows and audit rows inserted in the same batches: no crypto, no checks. */
async function baseline(runtime: Runtime, file: string, n: number): Promise<number> {
  await empty(runtime);
  const { store, repos } = runtime;
  const started = performance.now();
  let batch: NewCardRow[] = [];
  const flush = async () => {
    const rows = batch;
    batch = [];
    await store.transaction(async (tx) => {
      await repos.cards.insertMany(rows, tx);
      await repos.audit.insertMany(
        rows.map((row, i) => ({
          id: uuidv7(systemClock),
          tenant_id: TENANT,
          card_id: row.id,
          public_token: row.public_token,
          actor: "bench",
          action: "card.import",
          outcome: "success",
          request_id: null,
          details: JSON.stringify({ line: i, type: row.type, status: "active" }),
          created_at: row.created_at,
        })),
        tx,
      );
    });
  };
  let i = 0;
  for await (const { text } of readLines(file)) {
    const line = JSON.parse(text);
    const id = uuidv7(systemClock);
    const stamp = new Date().toISOString();
    batch.push({
      id,
      tenant_id: TENANT,
      public_token: line.publicToken,
      type: line.type,
      status: "active",
      pan_sealed: `v1:none:${id}`,
      pan_fingerprint: `bench:${i++}`,
      pan_first6: line.pan.slice(0, 6),
      pan_last4: line.pan.slice(-4),
      expiry: line.expiry,
      cardholder_name: null,
      customer_reference: null,
      cvk_id: "cvk-bench",
      cvv_service_code: line.serviceCode,
      cvv_tries_remaining: line.cvvTriesRemaining,
      pin_sealed: "pvv-only",
      pvk_id: "pvk-bench",
      pvki: line.pin.pvki,
      pvv: line.pin.pvv,
      pin_tries_remaining: line.pinTriesRemaining,
      created_at: stamp,
      updated_at: stamp,
      rotation_interval_hours: null,
      next_rotation_at: null,
      last_scheduled_at: null,
      last_rotated_at: null,
      test_clock_id: null,
    });
    if (batch.length >= DEFAULT_IMPORT_BATCH) await flush();
  }
  if (batch.length > 0) await flush();
  const seconds = (performance.now() - started) / 1000;
  return n / seconds;
}

export async function runImportBench(
  options: ImportBenchOptions,
  log: (line: string) => void,
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const n = options.cards;
  const dir = mkdtempSync(join(tmpdir(), "cardvault-bench-import-"));
  const file = join(dir, "cards.ndjson");
  writeCardFile(file, n);
  try {
    const stores: ("sqlite" | "postgres")[] = options.postgresUrl ? ["sqlite", "postgres"] : ["sqlite"];
    for (const kind of stores) {
      await withStore(kind, options.postgresUrl, async (_env, runtime) => {
        await runtime.services.tenants.add({ id: TENANT, maxCvvTries: 3, maxPinTries: 3 });
        const value: number[] = [];
        const base: number[] = [];
        for (let r = 0; r < options.rounds; r++) {
          log(`import: ${kind} round ${r + 1}/${options.rounds}`);
          base.push(await baseline(runtime, file, n));
          value.push(await subject(runtime, file, n));
        }
        const result = finish({
          id: `import-${kind}`,
          title: `import ${n.toLocaleString("en-US")} cards from an NDJSON file, ${kind === "sqlite" ? "SQLite" : "PostgreSQL"}`,
          unit: "cards/s",
          value: median(value),
          baseline: median(base),
          baselineLabel: "same file parsed, same rows inserted, no crypto/checks",
          rounds: { value, baseline: base },
          target: 0.5,
        });
        if (kind === "sqlite") {
          const floorOk = result.value >= 5_000;
          results.push({
            ...result,
            met: result.met && floorOk,
            notes: [`${floorOk ? "≥" : "<"} 5,000 cards/s`],
          });
        } else {
          results.push(result);
        }
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
