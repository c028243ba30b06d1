// `npx tsx bench/statement-costs.ts`: where a verify's SQLite time goes. Runs the HTTP verify scenario's
// service calls in process on the same seeded cards (50 concurrent callers; per card: three verifies of the right CVV,
// each with its rate-limit count) on a temporary SQLite store, timing every better-sqlite3 statement by its SQL text.
// Invariant: measurement only; the statements are the services' own, with group commit as serve runs it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { loadConfig } from "../src/config.js";
import { openRuntime } from "../src/runtime.js";
import { BENCH_ACTOR, BENCH_ENV, seedCards } from "./http-bench.js";

const CALLERS = 50;

// Every statement object shares this prototype: wrap its run/all/get with a timer.
const statementPrototype = Object.getPrototypeOf(new SqliteDatabase(":memory:").prepare("select 1"));
const costs = new Map<string, { calls: number; ns: bigint }>();
let timing = false;
for (const method of ["run", "all", "get"]) {
  const original = statementPrototype[method];
  statementPrototype[method] = function (this: { source: string }, ...args: unknown[]) {
    if (!timing) return original.apply(this, args);
    const start = process.hrtime.bigint();
    try {
      return original.apply(this, args);
    } finally {
      const key = this.source.replace(/\s+/g, " ").slice(0, 70);
      const cost = costs.get(key) ?? { calls: 0, ns: 0n };
      cost.calls++;
      cost.ns += process.hrtime.bigint() - start;
      costs.set(key, cost);
    }
  };
}

const dataDir = mkdtempSync(join(tmpdir(), "cardvault-statements-"));
const runtime = await openRuntime(loadConfig({ ...BENCH_ENV, CARDVAULT_JOBS: "off" }, { dataDir }), {
  warn: () => {},
});
try {
  const { services } = runtime;
  const actor = BENCH_ACTOR;
  const cards = await seedCards(services);

  let next = 0;
  const oneCard = async () => {
    const card = cards[next++ % cards.length]!;
    const attempt = { kind: "verify" as const, route: "bench", publicToken: card.token };
    // Right CVVs: a stream of wrong ones would spend every card's wrong-try budget (docs/api.md) at once.
    for (let i = 0; i < 3; i++) await services.cvv.verify({ ...actor, attempt }, card.token, card.cvv);
  };
  const run = (perCaller: number) =>
    Promise.all(
      Array.from({ length: CALLERS }, async () => {
        for (let i = 0; i < perCaller; i++) await oneCard();
      }),
    );

  await run(20); // warm: JIT, statement cache, pages
  timing = true;
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await run(100);
  const requests = CALLERS * 100 * 3;
  const wallUs = Number(process.hrtime.bigint() - started) / 1e3;
  const { user, system } = process.cpuUsage(cpu);
  console.log(
    `${requests} requests (3 verifies of the right CVV per card): ${(wallUs / requests).toFixed(1)} µs wall, ` +
      `${((user + system) / requests).toFixed(1)} µs CPU a request`,
  );
  let total = 0n;
  for (const [sql, cost] of [...costs].sort((a, b) => Number(b[1].ns - a[1].ns))) {
    total += cost.ns;
    const perRequest = (Number(cost.ns) / 1e3 / requests).toFixed(1).padStart(6);
    console.log(`${perRequest} µs a request  ${String(cost.calls).padStart(6)} calls  ${sql}`);
  }
  console.log(`${(Number(total) / 1e3 / requests).toFixed(1).padStart(6)} µs a request in SQLite`);
} finally {
  await runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
}
