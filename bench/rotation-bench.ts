// Rotation scenarios: N virtual cards all due at once, drained by the real scheduler path in 1 or 3 worker
// processes, against the same rows' writes without cryptography (rotation-worker.ts), on SQLite and on a
// fresh PostgreSQL database that is created for the run and dropped after it. Invariant: every round starts
// from the same N due rows (reset in SQL between rounds), and setup never goes through HTTP.
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import pg from "pg";
import { loadConfig } from "../src/config.js";
import { generatePan } from "../src/crypto/pan.js";
import { systemClock } from "../src/lib/clock.js";
import { uuidv7 } from "../src/lib/ids.js";
import { openRuntime, type Runtime } from "../src/runtime.js";
import { chunksOf } from "../src/store/chunks.js";
import { root } from "./processes.js";
import { finish, median, type ScenarioResult } from "./stats.js";

export interface RotationBenchOptions {
  cards: number;
  rounds: number;
  postgresUrl?: string;
}

const MASTER = "42".repeat(32);
const SECRET = "bench-secret-that-is-long-enough-for-hs256!";

/** Inserts `count` due virtual cards with PANs sealed by the real key provider, 500 rows per statement. */
async function seed(runtime: Runtime, count: number): Promise<void> {
  const { services, keys } = runtime;
  await services.tenants.add({ id: "bench", maxCvvTries: 3, maxPinTries: 3 });
  const actor = { tenantId: "bench", subject: "bench" };
  // One real card gives the sealed PIN every bench row shares (rotation never opens it).
  const template = await services.cards.create(actor, { type: "virtual" });
  const model = (await runtime.repos.cards.findByToken("bench", template.publicToken))!;
  const stamp = systemClock.now().toISOString();
  const rows = [];
  for (let i = 0; i < count; i++) {
    const id = uuidv7(systemClock);
    const pan = `${generatePan("400000", 16).slice(0, 6)}${String(i).padStart(9, "0")}`;
    const fixed = pan + luhn(pan);
    rows.push({
      ...model,
      max_cvv_tries: undefined,
      max_pin_tries: undefined,
      id,
      public_token: `b${String(i).padStart(8, "0")}`,
      pan_sealed: await keys.sealPan(fixed, { tenantId: "bench", cardId: id }),
      pan_fingerprint: `bench:${i}`,
      pan_last4: fixed.slice(-4),
      cvv_service_code: "000",
      rotation_interval_hours: 24,
      next_rotation_at: stamp,
      last_scheduled_at: stamp,
      created_at: stamp,
      updated_at: stamp,
    });
  }
  const db = runtime.store.db;
  await db.deleteFrom("cards").where("id", "=", model.id).execute();
  for (const chunk of chunksOf(rows, 400)) {
    await db
      .insertInto("cards")
      .values(chunk.map(({ max_cvv_tries: _a, max_pin_tries: _b, ...row }) => row))
      .execute();
  }
}

function luhn(digits: string): string {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

/** Puts every bench card back to "due now" and empties the trails, so each round does the same work. */
async function reset(runtime: Runtime): Promise<void> {
  const stamp = new Date(Date.now() - 1000).toISOString();
  const db = runtime.store.db;
  await db
    .updateTable("cards")
    .set({ next_rotation_at: stamp, cvv_service_code: "000" })
    .where("tenant_id", "=", "bench")
    .execute();
  await db.deleteFrom("outbox_events").execute();
  await db.deleteFrom("audit_events").execute();
}

/**
 * Right before the clock starts (the workers' rehearsals have rolled back): the dead row versions of the reset
 * and the rehearsals are vacuumed away on PostgreSQL, so one and three workers meet the same tables.
 */
async function settle(runtime: Runtime): Promise<void> {
  if (runtime.store.kind !== "postgres") return;
  for (const table of ["cards", "audit_events", "outbox_events"]) {
    await sql`VACUUM ANALYZE ${sql.table(table)}`.execute(runtime.store.db);
  }
}

/** Runs `workers` processes at once and returns rotations per second (all cards ÷ wall time of the slowest). */
async function drain(
  runtime: Runtime,
  mode: "real" | "baseline",
  workers: number,
  env: Record<string, string>,
  expected: number,
): Promise<number> {
  const children = Array.from({ length: workers }, () =>
    fork(join(root, "bench/rotation-worker.ts"), [mode], {
      cwd: root,
      env: { ...process.env, ...env },
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    }),
  );
  const ready = children.map(
    (c) => new Promise<void>((resolve) => c.on("message", (m: { ready?: boolean }) => m.ready && resolve())),
  );
  const done = children.map(
    (c) =>
      new Promise<number>((resolve, reject) => {
        c.on("message", (m: { done?: number }) => m.done !== undefined && resolve(m.done));
        c.on("exit", (code) => code !== 0 && reject(new Error(`rotation worker exited with ${code}`)));
      }),
  );
  await Promise.all(ready);
  await settle(runtime);
  const started = performance.now();
  for (const c of children) c.send({ go: true });
  const counts = await Promise.all(done);
  const seconds = (performance.now() - started) / 1000;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== expected)
    throw new Error(`${mode} with ${workers} worker(s) rotated ${total} of ${expected} cards`);
  await Promise.all(
    children.map(
      (c) => new Promise((resolve) => (c.exitCode === null ? c.on("exit", resolve) : resolve(null))),
    ),
  );
  return total / seconds;
}

export async function withStore<T>(
  kind: "sqlite" | "postgres",
  postgresUrl: string | undefined,
  fn: (env: Record<string, string>, runtime: Runtime) => Promise<T>,
): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), "cardvault-bench-rot-"));
  let dropDatabase: (() => Promise<void>) | undefined;
  const env: Record<string, string> = {
    CARDVAULT_DATA_DIR: dataDir,
    CARDVAULT_MASTER_KEY: MASTER,
    CARDVAULT_JWT_SECRET: SECRET,
    CARDVAULT_LOG_LEVEL: "warn",
  };
  if (kind === "postgres") {
    if (!postgresUrl) throw new Error("PostgreSQL scenarios need a URL");
    const name = `cardvault_bench_${randomBytes(5).toString("hex")}`;
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(postgresUrl);
    url.pathname = `/${name}`;
    env.CARDVAULT_DATABASE_URL = url.toString();
    dropDatabase = async () => {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    };
  }
  let runtime: Runtime | undefined;
  try {
    const config = loadConfig(env);
    if (kind === "postgres") {
      const { connectStore } = await import("../src/runtime.js");
      const { ensureSchema } = await import("../src/store/db.js");
      const migrating = connectStore(config);
      await ensureSchema(migrating.db, { migrate: true });
      await migrating.close();
    }
    runtime = await openRuntime(config, { warn: () => {} });
    return await fn(env, runtime);
  } finally {
    await runtime?.close();
    await dropDatabase?.();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runRotationBench(
  options: RotationBenchOptions,
  log: (line: string) => void,
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const n = options.cards;

  // One drain from the same N due rows; callers interleave subject and baseline round by round.
  const round = async (
    runtime: Runtime,
    env: Record<string, string>,
    mode: "real" | "baseline",
    workers: number,
  ) => {
    await reset(runtime);
    return drain(runtime, mode, workers, env, n);
  };

  await withStore("sqlite", undefined, async (env, runtime) => {
    log(`rotation: seeding ${n} cards on SQLite`);
    await seed(runtime, n);
    const value: number[] = [];
    const baseline: number[] = [];
    for (let r = 0; r < options.rounds; r++) {
      baseline.push(await round(runtime, env, "baseline", 1));
      value.push(await round(runtime, env, "real", 1));
    }
    const result = finish({
      id: "rotation-sqlite",
      title: `${n.toLocaleString("en-US")} virtual cards due at once, SQLite`,
      unit: "rotations/s",
      value: median(value),
      baseline: median(baseline),
      baselineLabel: "same rows' writes, no crypto/domain",
      rounds: { value, baseline },
      target: 0.5,
    });
    const floorOk = result.value >= 10_000;
    results.push({
      ...result,
      met: result.met && floorOk,
      notes: [`${floorOk ? "≥" : "<"} 10,000 rotations/s`],
    });
  });

  if (options.postgresUrl) {
    await withStore("postgres", options.postgresUrl, async (env, runtime) => {
      log(`rotation: seeding ${n} cards on PostgreSQL`);
      await seed(runtime, n);
      const one: number[] = [];
      const three: number[] = [];
      const baseline: number[] = [];
      for (let r = 0; r < options.rounds; r++) {
        baseline.push(await round(runtime, env, "baseline", 1));
        one.push(await round(runtime, env, "real", 1));
        three.push(await round(runtime, env, "real", 3));
      }
      results.push(
        finish({
          id: "rotation-postgres-1",
          title: `${n.toLocaleString("en-US")} cards due at once, PostgreSQL, 1 worker`,
          unit: "rotations/s",
          value: median(one),
          baseline: median(baseline),
          baselineLabel: "same rows' writes, no crypto/domain (1 worker)",
          rounds: { value: one, baseline },
        }),
      );
      const scale = median(three) / median(one);
      results.push({
        ...finish({
          id: "rotation-postgres-3",
          title: `${n.toLocaleString("en-US")} cards due at once, PostgreSQL, 3 workers`,
          unit: "rotations/s",
          value: median(three),
          baseline: median(baseline),
          baselineLabel: "same rows' writes, no crypto/domain (1 worker)",
          rounds: { value: three, baseline },
        }),
        notes: [`3 workers ÷ 1 worker = ${scale.toFixed(2)} (target ≥ 2)`],
        target: undefined,
        met: scale >= 2,
      });
    });
  }
  return results;
}
