// Get Card Data flood (issue 13, item 6): while 32 connections of one tenant send Get Card Data with garbage
// wrapped keys as fast as serve answers them, how much later do another tenant's CVV verifications and
// /healthz answer? A real `cardvault serve` (compiled dist/, or --tsx) on a temporary SQLite data directory,
// the brute-force limits set so high that only the key provider's pool protects it. The probes run at a fixed,
// modest rate (autocannon corrects their latencies for coordinated omission), so their p99 measures how long
// a request waits, not the probes' own queueing. Invariant: each flooded p99 is reported next to the
// unloaded p99 of the same rounds, measured alternately.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { loadConfig } from "../src/config.js";
import { mintToken, scopes } from "../src/http/auth.js";
import { systemClock } from "../src/lib/clock.js";
import { openRuntime } from "../src/runtime.js";
import { BENCH_ACTOR, BENCH_ENV, seedCards } from "./http-bench.js";
import { type Child, freePort, type RunMode, startServe, stop, waitForHttp } from "./processes.js";
import { finish, median, type ScenarioResult } from "./stats.js";

export interface FloodBenchOptions {
  rounds: number;
  /** Seconds of each probe phase (unloaded, then flooded). */
  durationSeconds: number;
  mode: RunMode;
  /** Extra node flags for serve (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Extra environment for serve (e.g. CARDVAULT_SECURE_DATA_THREADS). */
  env?: Record<string, string>;
}

const FLOOD_CONNECTIONS = 32;
/** The other tenant's probes: requests a second over all their connections. */
const VERIFY_RATE = 100;
const HEALTHZ_RATE = 50;

/**
 * A well-formed 4096-bit ciphertext that does not unwrap. Its first byte is zero so that it is below the
 * modulus (OpenSSL refuses a larger one before the exponentiation): each costs a full RSA private operation.
 */
function garbageKey(): string {
  const key = randomBytes(512);
  key[0] = 0;
  return key.toString("base64");
}

async function seed(dataDir: string) {
  const runtime = await openRuntime(loadConfig(BENCH_ENV, { dataDir }), { warn: () => {} });
  try {
    const cards = await seedCards(runtime.services);
    const flooder = { tenantId: "flooder", subject: "flooder" };
    await runtime.services.tenants.add({ id: flooder.tenantId });
    const target = await runtime.services.cards.create(flooder, { type: "virtual" });
    const token = (tenantId: string) =>
      mintToken({
        secret: BENCH_ENV.CARDVAULT_JWT_SECRET,
        tenantId,
        scopes: [...scopes],
        subject: tenantId,
        ttlSeconds: 6 * 3600,
        tenantClaim: runtime.config.auth.tenantClaim,
        clock: systemClock,
      });
    return {
      cards,
      verifyToken: await token(BENCH_ACTOR.tenantId),
      floodToken: await token(flooder.tenantId),
      floodCard: target.publicToken,
    };
  } finally {
    await runtime.close();
  }
}

interface Probe {
  p50: number;
  p99: number;
  requests: number;
  failures: number;
}

function probeOf(result: autocannon.Result): Probe {
  return {
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    failures: result.non2xx + result.errors + result.timeouts,
  };
}

export async function runFloodBench(options: FloodBenchOptions): Promise<ScenarioResult[]> {
  const dataDir = mkdtempSync(join(tmpdir(), "cardvault-bench-flood-"));
  let serve: Child | undefined;
  try {
    const { cards, verifyToken, floodToken, floodCard } = await seed(dataDir);
    const port = await freePort();
    serve = startServe(options, port, dataDir, { ...BENCH_ENV, ...options.env });
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/healthz`, serve);

    let next = 0;
    /** The other tenant's traffic, both probes at once for `duration` seconds. */
    const probes = async (duration: number) => {
      const [healthz, verify] = await Promise.all([
        autocannon({
          url,
          connections: 1,
          overallRate: HEALTHZ_RATE,
          duration,
          requests: [{ path: "/healthz" }],
        }),
        autocannon({
          url,
          connections: 4,
          overallRate: VERIFY_RATE,
          duration,
          headers: { authorization: `Bearer ${verifyToken}`, "content-type": "application/json" },
          requests: [
            {
              method: "POST",
              setupRequest: (request) => {
                const card = cards[next++ % cards.length]!;
                return {
                  ...request,
                  path: `/v1/cards/${card.token}/cvv/verify`,
                  body: `{"cvv":"${card.cvv}"}`,
                };
              },
            },
          ],
        }),
      ]);
      return { healthz: probeOf(healthz), verify: probeOf(verify) };
    };
    /** 32 connections of Get Card Data with garbage keys on the flooding tenant's card, as fast as answered. */
    const flood = (duration: number) =>
      autocannon({
        url,
        connections: FLOOD_CONNECTIONS,
        duration,
        headers: { authorization: `Bearer ${floodToken}`, "content-type": "application/json" },
        requests: [
          {
            method: "POST",
            path: `/v1/cards/${floodCard}/secure-data`,
            body: JSON.stringify({ key: garbageKey() }),
          },
        ],
      });

    const pause = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    // Warm up (JIT, the pool's threads, the SQLite page cache) before anything is measured.
    await Promise.all([probes(2), flood(2)]);
    await pause(3);

    const unloaded: { healthz: Probe; verify: Probe }[] = [];
    const flooded: { healthz: Probe; verify: Probe }[] = [];
    const floods: autocannon.Result[] = [];
    for (let r = 0; r < options.rounds; r++) {
      unloaded.push(await probes(options.durationSeconds));
      // The flood starts a second before the probes and ends a second after them.
      const flooding = flood(options.durationSeconds + 2);
      await pause(1);
      flooded.push(await probes(options.durationSeconds));
      floods.push(await flooding);
      // What the flood left in flight (up to a queue's worth of RSA work) is answered before the next round.
      await pause(3);
    }

    const floodNote = () => {
      const perSecond = median(floods.map((f) => f.requests.average));
      const statuses = new Map<string, number>();
      for (const f of floods)
        for (const [code, { count }] of Object.entries(f.statusCodeStats ?? {}))
          statuses.set(code, (statuses.get(code) ?? 0) + Number(count));
      const answered = [...statuses].map(([code, count]) => `${count}×${code}`).join(", ");
      return `flood ${Math.round(perSecond)} req/s (${answered}), p50 ${median(floods.map((f) => f.latency.p50))} ms`;
    };
    const scenario = (id: string, title: string, probe: "healthz" | "verify", rate: number) => {
      const value = median(flooded.map((f) => f[probe].p99));
      const baseline = median(unloaded.map((u) => u[probe].p99));
      const failures = [...flooded, ...unloaded].reduce((n, p) => n + p[probe].failures, 0);
      return finish({
        id,
        title: `${title} p99 at ${rate} req/s, flooded vs unloaded`,
        unit: "ms",
        value,
        baseline,
        baselineLabel: "unloaded p99",
        rounds: { value: flooded.map((f) => f[probe].p99), baseline: unloaded.map((u) => u[probe].p99) },
        ceiling: 2,
        p99Ms: value,
        notes: [
          `p50 ${median(flooded.map((f) => f[probe].p50))} vs ${median(unloaded.map((u) => u[probe].p50))} ms`,
          ...(failures > 0 ? [`${failures} non-2xx/errors`] : []),
          floodNote(),
        ],
      });
    };
    return [
      scenario("flood-healthz", "GET /healthz", "healthz", HEALTHZ_RATE),
      scenario("flood-cvv-verify", "POST …/cvv/verify (another tenant)", "verify", VERIFY_RATE),
    ];
  } finally {
    if (serve) await stop(serve);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
