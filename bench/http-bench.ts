// HTTP scenarios: a real `cardvault serve` process on a temporary data directory (SQLite), loaded by autocannon
// from this process over loopback, each scenario interleaved round by round with the bare Fastify baseline.
// Invariant: load and server never share a process, and every number is a median next to its same-run baseline.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { loadConfig } from "../src/config.js";
import { mintToken, scopes } from "../src/http/auth.js";
import { systemClock } from "../src/lib/clock.js";
import { openRuntime, type Runtime } from "../src/runtime.js";
import {
  type Child,
  freePort,
  nodeArgs,
  peakRssMb,
  type RunMode,
  start,
  stop,
  waitForHttp,
} from "./processes.js";
import { finish, median, type ScenarioResult } from "./stats.js";

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

/** Cards, PINs and wrong CVVs made before serve starts (setup, not measured), and a token for every scope. */
export async function seed(dataDir: string) {
  const runtime = await openRuntime(loadConfig(BENCH_ENV, { dataDir }), { warn: () => {} });
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

export async function runHttpBench(
  options: HttpBenchOptions,
): Promise<{ results: ScenarioResult[]; peakRssMb: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), "cardvault-bench-"));
  const children: Child[] = [];
  try {
    const { cards, token } = await seed(dataDir);
    const helloPort = await freePort();
    const servePort = await freePort();
    // The baseline is a few lines of TypeScript: tsx transforms it once at start, then it is plain JavaScript.
    const baseline = start(["--import", "tsx", "bench/hello-server.ts", String(helloPort)]);
    children.push(baseline);
    const serveEntry = { ts: "src/cli/main.ts", js: "dist/cli/main.js" };
    const serve = start(
      nodeArgs(options.mode, serveEntry, options.nodeFlags ?? []).concat([
        "serve",
        "--port",
        String(servePort),
        "--data-dir",
        dataDir,
      ]),
      {
        ...BENCH_ENV,
        CARDVAULT_JOBS: "off",
        NODE_ENV: "development",
        ...options.env,
      },
    );
    children.push(serve);
    const helloUrl = `http://127.0.0.1:${helloPort}`;
    const serveUrl = `http://127.0.0.1:${servePort}`;
    await Promise.all([
      waitForHttp(`${helloUrl}/hello`, baseline),
      waitForHttp(`${serveUrl}/healthz`, serve),
    ]);

    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    let next = 0;
    const pick = () => cards[next++ % cards.length]!;
    const scenarios: {
      id: string;
      title: string;
      target: number;
      p99TargetMs?: number;
      requests: autocannon.Request[];
    }[] = [
      {
        id: "http-cvv-status",
        title: "GET /v1/cards/{t}/cvv/status",
        target: 0.5,
        p99TargetMs: 25,
        requests: [
          {
            method: "GET",
            setupRequest: (req) => ({ ...req, path: `/v1/cards/${pick().token}/cvv/status` }),
          },
        ],
      },
      {
        id: "http-cvv-verify",
        // The right CVV, as an authorisation host mostly sends: since the wrong-try budget (10 a day per card,
        // docs/api.md) a stream of wrong ones would compromise every card within a second and then measure
        // only refusals. Each match still steps the counter, audits and counts the attempt in one transaction.
        title: "POST …/cvv/verify (right CVV)",
        target: 0.35,
        p99TargetMs: 25,
        requests: [
          {
            method: "POST",
            setupRequest: (req) => {
              const card = pick();
              return { ...req, path: `/v1/cards/${card.token}/cvv/verify`, body: `{"cvv":"${card.cvv}"}` };
            },
          },
        ],
      },
      {
        id: "http-pin-verify",
        title: "POST …/pin/verify",
        target: 0.35,
        requests: [
          {
            method: "POST",
            setupRequest: (req) => ({
              ...req,
              path: `/v1/cards/${pick().token}/pin/verify`,
              body: '{"pin":"1234"}',
            }),
          },
        ],
      },
      {
        id: "http-card-create",
        title: "POST /v1/cards",
        target: 0.1,
        requests: [{ method: "POST", path: "/v1/cards", body: '{"type":"virtual"}' }],
      },
    ];

    // Warm both servers (JIT, SQLite page cache, token cache) before anything is measured.
    await load(helloUrl, options.connections, 2, [{ method: "GET", path: "/hello" }], {});
    for (const s of scenarios) {
      if (!options.only || options.only.includes(s.id))
        await load(serveUrl, options.connections, 1, s.requests, auth);
    }

    const results: ScenarioResult[] = [];
    for (const s of scenarios) {
      if (options.only && !options.only.includes(s.id)) continue;
      const subject: Load[] = [];
      const base: Load[] = [];
      for (let r = 0; r < options.rounds; r++) {
        base.push(
          await load(
            helloUrl,
            options.connections,
            options.durationSeconds,
            [{ method: "GET", path: "/hello" }],
            {},
          ),
        );
        subject.push(await load(serveUrl, options.connections, options.durationSeconds, s.requests, auth));
      }
      const notes: string[] = [];
      const failures = subject.reduce((n, l) => n + l.non2xx + l.errors, 0);
      if (failures > 0) notes.push(`${failures} non-2xx/errors`);
      results.push(
        finish({
          id: s.id,
          title: `${s.title}, ${options.connections} connections`,
          unit: "req/s",
          value: median(subject.map((l) => l.requests)),
          baseline: median(base.map((l) => l.requests)),
          baselineLabel: 'bare Fastify "hello" req/s',
          rounds: { value: subject.map((l) => l.requests), baseline: base.map((l) => l.requests) },
          target: s.target,
          p99Ms: median(subject.map((l) => l.p99)),
          ...(s.p99TargetMs ? { p99TargetMs: s.p99TargetMs } : {}),
          notes,
        }),
      );
    }
    const rss = peakRssMb(serve.child.pid);
    return { results, peakRssMb: rss };
  } finally {
    for (const c of children) await stop(c);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
