// HTTP scenarios: a real `cardvault serve` process on a temporary data directory (SQLite), and — when a local
// PostgreSQL is given — one and two serve processes on a fresh database, loaded by autocannon from this process
// over loopback, each scenario interleaved round by round with the bare Fastify baseline. PostgreSQL's rounds
// sample pg_stat_activity, so a slow round shows what the backends waited on.
// Invariant: load and server never share a process, and every number is a median next to its same-run baseline.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { loadConfig } from "../src/config.js";
import { mintToken, scopes } from "../src/http/auth.js";
import { initTokenKeys, openToken } from "../src/keys/pkcs11-token.js";
import { systemClock } from "../src/lib/clock.js";
import { openRuntime, type Runtime } from "../src/runtime.js";
import { createSoftHsmToken, SOFTHSM_MODULE } from "../test/helpers/softhsm.js";
import { type BenchDatabase, createBenchDatabase, sampleWaitEvents } from "./bench-database.js";
import {
  type Child,
  freePort,
  peakRssMb,
  type RunMode,
  start,
  startServe,
  stop,
  waitForHttp,
} from "./processes.js";
import { finish, fmt, median, type ScenarioResult } from "./stats.js";

export interface HttpBenchOptions {
  rounds: number;
  durationSeconds: number;
  connections: number;
  mode: RunMode;
  /** Extra node flags for serve (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Run only these scenario ids. */
  only?: string[];
  /** Extra environment for serve (e.g. CARDVAULT_LOG_LEVEL). */
  env?: Record<string, string>;
  /** A local PostgreSQL server: each scenario also runs on a fresh database there, with one and two serves. */
  postgresUrl?: string;
}

const SECRET = "bench-secret-that-is-long-enough-for-hs256!";
const MASTER = "42".repeat(32);
const CARDS = 200;

interface Load {
  requests: number;
  /** Requests completed in the round. */
  total: number;
  p99: number;
  non2xx: number;
  errors: number;
}

export async function load(
  url: string,
  connections: number,
  duration: number,
  requests: autocannon.Request[],
  headers: Record<string, string>,
): Promise<Load> {
  const result = await autocannon({ url, connections, duration, requests, headers, pipelining: 1 });
  return {
    requests: result.requests.average,
    total: result.requests.total,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/** The keys of the bench's stores, and its brute-force limiter: it counts every attempt (same writes) but never refuses one. */
export const BENCH_ENV = {
  CARDVAULT_JWT_SECRET: SECRET,
  CARDVAULT_MASTER_KEY: MASTER,
  CARDVAULT_RATE_LIMIT_PER_CARD: "1000000000",
  CARDVAULT_RATE_LIMIT_PER_TENANT: "1000000000",
  // The secure-data flood measures what the worker pool protects, not the tenant's Get Card Data limit.
  CARDVAULT_RATE_LIMIT_SECURE_DATA_PER_TENANT: "1000000000",
  CARDVAULT_RATE_LIMIT_MANAGE_PER_CARD_DAY: "1000000000",
};
export const BENCH_ACTOR = { tenantId: "bench", subject: "bench" };

/** The scenarios' tenant (3 tries) and cards, each with PIN 1234, its CVV and a wrong one, made through the services. */
export async function seedCards(
  services: Runtime["services"],
): Promise<{ token: string; cvv: string; wrongCvv: string }[]> {
  await services.tenants.add({ id: BENCH_ACTOR.tenantId, maxCvvTries: 3, maxPinTries: 3 });
  const cards: { token: string; cvv: string; wrongCvv: string }[] = [];
  for (let i = 0; i < CARDS; i++) {
    const card = await services.cards.create(BENCH_ACTOR, { type: "virtual" });
    await services.pin.set(BENCH_ACTOR, card.publicToken, "1234");
    const { cvv } = await services.cvv.get(BENCH_ACTOR, card.publicToken);
    cards.push({
      token: card.publicToken,
      cvv,
      wrongCvv: String((Number(cvv) + 1) % 1000).padStart(3, "0"),
    });
  }
  return cards;
}

type Cards = Awaited<ReturnType<typeof seedCards>>;

/** Cards, PINs and wrong CVVs made before serve starts (setup, not measured), and a token for every scope. */
export async function seed(dataDir: string, env: Record<string, string> = {}) {
  const runtime = await openRuntime(loadConfig({ ...BENCH_ENV, ...env }, { dataDir }), { warn: () => {} });
  try {
    const cards = await seedCards(runtime.services);
    const token = await mintToken({
      secret: SECRET,
      tenantId: BENCH_ACTOR.tenantId,
      scopes: [...scopes],
      subject: BENCH_ACTOR.subject,
      ttlSeconds: 6 * 3600,
      tenantClaim: runtime.config.auth.tenantClaim,
      clock: systemClock,
    });
    return { cards, token };
  } finally {
    await runtime.close();
  }
}

/** A running `cardvault serve` on its data directory (and database), with the cards seeded in its store. */
interface Served {
  url: string;
  child: Child;
}

function serveOf(options: HttpBenchOptions, port: number, dataDir: string, env: Record<string, string>) {
  return startServe(options, port, dataDir, { ...BENCH_ENV, ...env, ...options.env });
}

/** One load: `connections` split evenly over the servers, all at once; rates add up, the worst p99 counts. */
async function loadAll(
  servers: readonly Served[],
  connections: number,
  duration: number,
  requests: autocannon.Request[],
  headers: Record<string, string>,
): Promise<Load> {
  const each = Math.floor(connections / servers.length);
  const loads = await Promise.all(servers.map((s) => load(s.url, each, duration, requests, headers)));
  return {
    requests: loads.reduce((n, l) => n + l.requests, 0),
    total: loads.reduce((n, l) => n + l.total, 0),
    p99: Math.max(...loads.map((l) => l.p99)),
    non2xx: loads.reduce((n, l) => n + l.non2xx, 0),
    errors: loads.reduce((n, l) => n + l.errors, 0),
  };
}

/** postgres2: two serves on one database; pkcs11: SQLite with the keys in a SoftHSM2 token (the verify only). */
type StoreName = "sqlite" | "postgres" | "postgres2" | "pkcs11";

/** A scenario: the same requests on each store, measured round by round beside "hello". */
interface Scenario {
  id: string;
  title: string;
  /** SQLite against "hello". */
  target: number;
  p99TargetMs?: number;
  /** PostgreSQL, one serve, against SQLite's value in the same rounds (undefined: report only). */
  postgresTarget?: number;
  /** PostgreSQL, absolute floor (req/s). */
  postgresFloor?: number;
  /** Also run with two serves sharing the load; target against one serve. */
  twoServesTarget?: number;
  requests: (cards: Cards) => autocannon.Request[];
}

function scenarios(): Scenario[] {
  const picker = (cards: Cards) => {
    let next = 0;
    return () => cards[next++ % cards.length]!;
  };
  return [
    {
      id: "http-cvv-status",
      title: "GET /v1/cards/{t}/cvv/status",
      target: 0.5,
      p99TargetMs: 25,
      postgresTarget: 0.5,
      requests: (cards) => {
        const pick = picker(cards);
        return [
          {
            method: "GET",
            setupRequest: (req) => ({ ...req, path: `/v1/cards/${pick().token}/cvv/status` }),
          },
        ];
      },
    },
    {
      id: "http-cvv-verify",
      // The right CVV, as an authorisation host mostly sends: since the wrong-try budget (10 a day per card,
      // docs/api.md) a stream of wrong ones would compromise every card within a second and then measure
      // only refusals. Each match still steps the counter, audits and counts the attempt in one transaction.
      title: "POST …/cvv/verify (right CVV)",
      target: 0.35,
      p99TargetMs: 25,
      postgresTarget: 0.5,
      twoServesTarget: 1.3,
      requests: (cards) => {
        const pick = picker(cards);
        return [
          {
            method: "POST",
            setupRequest: (req) => {
              const card = pick();
              return { ...req, path: `/v1/cards/${card.token}/cvv/verify`, body: `{"cvv":"${card.cvv}"}` };
            },
          },
        ];
      },
    },
    {
      id: "http-pin-verify",
      title: "POST …/pin/verify",
      target: 0.35,
      p99TargetMs: 25,
      postgresTarget: 0.5,
      requests: (cards) => {
        const pick = picker(cards);
        return [
          {
            method: "POST",
            setupRequest: (req) => ({
              ...req,
              path: `/v1/cards/${pick().token}/pin/verify`,
              body: '{"pin":"1234"}',
            }),
          },
        ];
      },
    },
    {
      id: "http-card-create",
      title: "POST /v1/cards",
      target: 0.1,
      postgresFloor: 1000,
      requests: () => [{ method: "POST", path: "/v1/cards", body: '{"type":"virtual"}' }],
    },
  ];
}

export async function runHttpBench(
  options: HttpBenchOptions,
): Promise<{ results: ScenarioResult[]; peakRssMb: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), "cardvault-bench-"));
  const pgDataDir = mkdtempSync(join(tmpdir(), "cardvault-bench-pg-"));
  const hsmDataDir = mkdtempSync(join(tmpdir(), "cardvault-bench-pkcs11-"));
  const children: Child[] = [];
  let database: BenchDatabase | undefined;
  try {
    const helloPort = await freePort();
    // The baseline is a few lines of TypeScript: tsx transforms it once at start, then it is plain JavaScript.
    const baseline = start(["--import", "tsx", "bench/hello-server.ts", String(helloPort)]);
    children.push(baseline);
    const helloUrl = `http://127.0.0.1:${helloPort}`;

    const stores = new Map<StoreName, { servers: Served[]; cards: Cards; token: string }>();
    const sqlite = await seed(dataDir);
    const sqlitePort = await freePort();
    const sqliteServe = serveOf(options, sqlitePort, dataDir, {});
    children.push(sqliteServe);
    stores.set("sqlite", {
      servers: [{ url: `http://127.0.0.1:${sqlitePort}`, child: sqliteServe }],
      ...sqlite,
    });
    if (options.postgresUrl) {
      // One fresh database for the run; the one-serve and two-serve rounds share its cards.
      database = await createBenchDatabase(options.postgresUrl);
      const env = { CARDVAULT_DATABASE_URL: database.url };
      const seeded = await seed(pgDataDir, env);
      const servers: Served[] = [];
      for (let i = 0; i < 2; i++) {
        const port = await freePort();
        const child = serveOf(options, port, pgDataDir, env);
        children.push(child);
        servers.push({ url: `http://127.0.0.1:${port}`, child });
      }
      stores.set("postgres", { servers: servers.slice(0, 1), ...seeded });
      stores.set("postgres2", { servers, ...seeded });
    }
    if (existsSync(SOFTHSM_MODULE)) {
      // A serve whose keys live in a fresh SoftHSM2 token (generated inside it, as `keys init` does), on a
      // SQLite store of its own: the verify through the PKCS#11 provider, reported beside the local provider's.
      const settings = createSoftHsmToken("bench");
      const token = openToken(settings);
      try {
        await initTokenKeys(token, systemClock);
      } finally {
        token.close();
      }
      const env = {
        CARDVAULT_KEY_PROVIDER: "pkcs11",
        CARDVAULT_PKCS11_MODULE: settings.module,
        CARDVAULT_PKCS11_TOKEN: settings.label,
        CARDVAULT_PKCS11_PIN: settings.pin,
      };
      const seeded = await seed(hsmDataDir, env);
      const port = await freePort();
      const child = serveOf(options, port, hsmDataDir, env);
      children.push(child);
      stores.set("pkcs11", { servers: [{ url: `http://127.0.0.1:${port}`, child }], ...seeded });
    }
    await Promise.all([
      waitForHttp(`${helloUrl}/hello`, baseline),
      ...[...stores.values()].flatMap((s) => s.servers.map((v) => waitForHttp(`${v.url}/healthz`, v.child))),
    ]);

    const hello = () =>
      load(helloUrl, options.connections, options.durationSeconds, [{ method: "GET", path: "/hello" }], {});
    const run = (store: StoreName, s: Scenario, duration: number) => {
      const { servers, cards, token } = stores.get(store)!;
      const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      return loadAll(servers, options.connections, duration, s.requests(cards), auth);
    };
    const subjectsOf = (s: Scenario): StoreName[] => [
      "sqlite",
      ...(stores.has("postgres")
        ? (["postgres", ...(s.twoServesTarget ? (["postgres2"] as const) : [])] as const)
        : []),
      ...(stores.has("pkcs11") && s.id === "http-cvv-verify" ? (["pkcs11"] as const) : []),
    ];

    const wanted = scenarios().filter((s) => !options.only || options.only.includes(s.id));
    // Warm every server (JIT, page caches, token cache) before anything is measured.
    await load(helloUrl, options.connections, 2, [{ method: "GET", path: "/hello" }], {});
    for (const s of wanted) for (const store of subjectsOf(s)) await run(store, s, 1);

    const results: ScenarioResult[] = [];
    for (const s of wanted) {
      const base: Load[] = [];
      const measured = new Map<StoreName, Load[]>(subjectsOf(s).map((store) => [store, []]));
      const waits = new Map<StoreName, { samples: number; waits: [string, number][] }[]>();
      for (let r = 0; r < options.rounds; r++) {
        base.push(await hello());
        for (const [store, loads] of measured) {
          const sampler =
            store.startsWith("postgres") && options.postgresUrl && database
              ? sampleWaitEvents(options.postgresUrl, new URL(database.url).pathname.slice(1))
              : undefined;
          loads.push(await run(store, s, options.durationSeconds));
          if (sampler) waits.set(store, [...(waits.get(store) ?? []), await sampler.stop()]);
        }
      }
      const rate = (loads: Load[]) => median(loads.map((l) => l.requests));
      const notesOf = (loads: Load[], store: StoreName) => {
        const notes: string[] = [];
        const failures = loads.reduce((n, l) => n + l.non2xx + l.errors, 0);
        if (failures > 0) notes.push(`${failures} non-2xx/errors`);
        const sampled = waits.get(store);
        if (sampled) notes.push(`PostgreSQL waits: ${waitSummary(sampled)}`);
        return notes;
      };
      const sqliteLoads = measured.get("sqlite")!;
      const helloRate = rate(base);
      results.push(
        finish({
          id: s.id,
          title: `${s.title}, ${options.connections} connections`,
          unit: "req/s",
          value: rate(sqliteLoads),
          baseline: helloRate,
          baselineLabel: 'bare Fastify "hello" req/s',
          rounds: { value: sqliteLoads.map((l) => l.requests), baseline: base.map((l) => l.requests) },
          target: s.target,
          p99Ms: median(sqliteLoads.map((l) => l.p99)),
          ...(s.p99TargetMs ? { p99TargetMs: s.p99TargetMs } : {}),
          notes: notesOf(sqliteLoads, "sqlite"),
        }),
      );
      const pgLoads = measured.get("postgres");
      if (pgLoads) {
        const notes = notesOf(pgLoads, "postgres");
        notes.unshift(`${(rate(pgLoads) / helloRate).toFixed(2)}× hello`);
        const floorMet = s.postgresFloor === undefined || rate(pgLoads) >= s.postgresFloor;
        if (s.postgresFloor !== undefined) notes.unshift(`floor ${fmt(s.postgresFloor)} req/s`);
        const result = finish({
          id: `${s.id}-postgres`,
          title: `${s.title}, PostgreSQL, ${options.connections} connections`,
          unit: "req/s",
          value: rate(pgLoads),
          baseline: rate(sqliteLoads),
          baselineLabel: "SQLite req/s, same rounds",
          rounds: { value: pgLoads.map((l) => l.requests), baseline: sqliteLoads.map((l) => l.requests) },
          ...(s.postgresTarget !== undefined ? { target: s.postgresTarget } : {}),
          p99Ms: median(pgLoads.map((l) => l.p99)),
          ...(s.p99TargetMs ? { p99TargetMs: s.p99TargetMs } : {}),
          notes,
        });
        results.push(s.postgresFloor === undefined ? result : { ...result, met: floorMet });
      }
      const twoLoads = measured.get("postgres2");
      if (pgLoads && twoLoads) {
        const half = options.connections / 2;
        results.push(
          finish({
            id: `${s.id}-postgres-2`,
            title: `${s.title}, PostgreSQL, 2 serves (${half} + ${half} connections)`,
            unit: "req/s",
            value: rate(twoLoads),
            baseline: rate(pgLoads),
            baselineLabel: "one serve req/s, same rounds",
            rounds: { value: twoLoads.map((l) => l.requests), baseline: pgLoads.map((l) => l.requests) },
            target: s.twoServesTarget!,
            p99Ms: median(twoLoads.map((l) => l.p99)),
            ...(s.p99TargetMs ? { p99TargetMs: s.p99TargetMs } : {}),
            notes: notesOf(twoLoads, "postgres2"),
          }),
        );
      }
      const hsmLoads = measured.get("pkcs11");
      if (hsmLoads) {
        // Reported, not a target: SoftHSM2 is a software token whose every call costs ~0.5 ms (BENCHMARKS.md).
        results.push(
          finish({
            id: `${s.id}-pkcs11`,
            title: `${s.title}, keys in a SoftHSM2 token (PKCS#11), ${options.connections} connections`,
            unit: "req/s",
            value: rate(hsmLoads),
            baseline: rate(sqliteLoads),
            baselineLabel: "local key provider req/s, same rounds",
            rounds: { value: hsmLoads.map((l) => l.requests), baseline: sqliteLoads.map((l) => l.requests) },
            p99Ms: median(hsmLoads.map((l) => l.p99)),
            notes: notesOf(hsmLoads, "pkcs11"),
          }),
        );
      }
    }
    const rss = peakRssMb(sqliteServe.child.pid);
    return { results, peakRssMb: rss };
  } finally {
    for (const c of children) await stop(c);
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(pgDataDir, { recursive: true, force: true });
    rmSync(hsmDataDir, { recursive: true, force: true });
  }
}

/** The three commonest states of PostgreSQL's active backends over the sampled rounds, as shares of samples. */
function waitSummary(sampled: { samples: number; waits: [string, number][] }[]): string {
  const tally = new Map<string, number>();
  let samples = 0;
  for (const s of sampled) {
    samples += s.samples;
    for (const [wait, n] of s.waits) tally.set(wait, (tally.get(wait) ?? 0) + n);
  }
  return [...tally]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([wait, n]) => `${wait} ${(n / Math.max(1, samples)).toFixed(1)}`)
    .join(", ");
}
