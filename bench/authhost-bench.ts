// The authorisation host's load (`--only authhost`): 10,000 cards over 5 tenants on a fresh PostgreSQL database,
// two `serve` processes (25 + 25 connections), CVV verifies with a hot-card skew (10 % of the cards take half
// the requests) and a few wrong CVVs. Every answer is tallied per card by the load generator; afterwards the
// store is checked against the tally exactly: each card's audit rows (matches, mismatches), its recorded wrong
// tries and its rate-limit counts, and each tenant's count over its shard rows.
// Invariant: the figures are reported only beside that check; a run with an error or a mismatch is NOT met.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { loadConfig } from "../src/config.js";
import { luhnCheckDigit } from "../src/crypto/luhn.js";
import { mintToken, scopes } from "../src/http/auth.js";
import { systemClock } from "../src/lib/clock.js";
import { uuidv7 } from "../src/lib/ids.js";
import { openRuntime, type Runtime } from "../src/runtime.js";
import { sealedCardOf } from "../src/services/card-transaction.js";
import { chunksOf } from "../src/store/chunks.js";
import { createBenchDatabase, sampleWaitEvents } from "./bench-database.js";
import { BENCH_ENV } from "./http-bench.js";
import { type Child, freePort, type RunMode, startServe, stop, waitForHttp } from "./processes.js";
import { fmt, type ScenarioResult } from "./stats.js";

export interface AuthhostBenchOptions {
  postgresUrl: string;
  durationSeconds: number;
  mode: RunMode;
  cards?: number;
  tenants?: number;
  connections?: number;
}

interface Card {
  tenant: number;
  token: string;
  cvv: string;
  wrongCvv: string;
}

/** What the load generator was told about one card. */
interface Tally {
  match: number;
  mismatch: number;
  other: number;
}

/** A wrong CVV in every 50 requests, at most 2 a card: never 3 in a row (max tries 3), never the day's budget. */
const WRONG_EVERY = 50;
const WRONG_PER_CARD = 2;

/**
 * One card per tenant made through the services, the rest inserted in bulk as copies of it with a PAN of
 * their own, sealed by the key provider and bound to their own id (the PIN block is the model's: a verify of
 * the CVV never opens it). Through the services, 10,000 cards took over a minute on a busy machine.
 */
async function seed(runtime: Runtime, tenants: number, cards: number): Promise<Card[]> {
  const made: Card[] = [];
  const stamp = systemClock.now().toISOString();
  for (let t = 0; t < tenants; t++) {
    const tenantId = `auth${t}`;
    await runtime.services.tenants.add({ id: tenantId, maxCvvTries: 3, maxPinTries: 3 });
    const view = await runtime.services.cards.create({ tenantId, subject: "bench" }, { type: "virtual" });
    const model = await runtime.store.db
      .selectFrom("cards")
      .selectAll()
      .where("public_token", "=", view.publicToken)
      .executeTakeFirstOrThrow();
    const rows = [];
    for (let i = t; i < cards; i += tenants) {
      const id = uuidv7(systemClock);
      const digits = `${model.pan_first6}${String(i).padStart(9, "0")}`;
      const pan = digits + luhnCheckDigit(digits);
      const row = {
        ...model,
        id,
        public_token: String(100_000_000 + i),
        pan_sealed: await runtime.keys.sealPan(pan, { tenantId, cardId: id }),
        pan_fingerprint: await runtime.keys.panFingerprint(pan),
        pan_last4: pan.slice(-4),
        created_at: stamp,
        updated_at: stamp,
      };
      rows.push(row);
      const cvv = await runtime.keys.deriveCvv(sealedCardOf(row));
      made.push({
        tenant: t,
        token: row.public_token,
        cvv,
        wrongCvv: String((Number(cvv) + 1) % 1000).padStart(3, "0"),
      });
    }
    for (const chunk of chunksOf(rows, 400))
      await runtime.store.db.insertInto("cards").values(chunk).execute();
  }
  // Creation order interleaves the tenants, so the hot set (the first 10 %) spans all of them.
  return made.sort((a, b) => a.token.localeCompare(b.token));
}

export async function runAuthhostBench(
  options: AuthhostBenchOptions,
  log: (line: string) => void,
): Promise<ScenarioResult[]> {
  const tenants = options.tenants ?? 5;
  const cardCount = options.cards ?? 10_000;
  const connections = options.connections ?? 50;
  const database = await createBenchDatabase(options.postgresUrl);
  const dataDir = mkdtempSync(join(tmpdir(), "cardvault-bench-auth-"));
  const env = { ...BENCH_ENV, CARDVAULT_DATABASE_URL: database.url };
  const children: Child[] = [];
  let runtime: Runtime | undefined;
  try {
    runtime = await openRuntime(loadConfig(env, { dataDir }), { warn: () => {} });
    const seedStart = Date.now();
    const cards = await seed(runtime, tenants, cardCount);
    log(`authhost: ${cardCount} cards over ${tenants} tenants seeded in ${Date.now() - seedStart} ms`);
    const tokens = await Promise.all(
      Array.from({ length: tenants }, (_, t) =>
        mintToken({
          secret: env.CARDVAULT_JWT_SECRET,
          tenantId: `auth${t}`,
          scopes: [...scopes],
          subject: "authhost",
          ttlSeconds: 3600,
          tenantClaim: runtime!.config.auth.tenantClaim,
          clock: systemClock,
        }),
      ),
    );
    const urls: string[] = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const child = startServe(options, port, dataDir, env);
      children.push(child);
      urls.push(`http://127.0.0.1:${port}`);
    }
    await Promise.all(urls.map((u, i) => waitForHttp(`${u}/healthz`, children[i]!)));

    // The hot set: the first 10 % of the cards (shuffled by creation order over the tenants) take half the requests.
    const hot = cards.slice(0, Math.max(1, Math.floor(cards.length / 10)));
    const cold = cards.slice(hot.length);
    const tallies = new Map<string, Tally>(cards.map((c) => [c.token, { match: 0, mismatch: 0, other: 0 }]));
    const wrongSent = new Map<string, number>();
    let sent = 0;
    const pick = (): { card: Card; wrong: boolean } => {
      const from = Math.random() < 0.5 ? hot : cold;
      const card = from[Math.floor(Math.random() * from.length)]!;
      const wrong = ++sent % WRONG_EVERY === 0 && (wrongSent.get(card.token) ?? 0) < WRONG_PER_CARD;
      if (wrong) wrongSent.set(card.token, (wrongSent.get(card.token) ?? 0) + 1);
      return { card, wrong };
    };
    // Each connection has one request in flight (no pipelining): its context says which card and CVV it sent.
    // Requests still in flight when the load stops may or may not have been served; they are known one by one.
    const inFlight = new Map<Record<string, unknown>, { card: string; wrong: boolean }>();
    const request: autocannon.Request = {
      method: "POST",
      setupRequest: (req, context) => {
        const { card, wrong } = pick();
        inFlight.set(context, { card: card.token, wrong });
        return {
          ...req,
          path: `/v1/cards/${card.token}/cvv/verify`,
          headers: {
            authorization: `Bearer ${tokens[card.tenant]}`,
            "content-type": "application/json",
          },
          body: `{"cvv":"${wrong ? card.wrongCvv : card.cvv}"}`,
        };
      },
      onResponse: (status, body, context) => {
        const sentWith = inFlight.get(context)!;
        inFlight.delete(context);
        const tally = tallies.get(sentWith.card)!;
        const result = status === 200 ? (JSON.parse(body) as { result: string }).result : "";
        // The answer a right CVV must get is a match, a wrong one a mismatch (never 3 wrong in a row).
        if (result === (sentWith.wrong ? "mismatch" : "match")) tally[result as "match" | "mismatch"]++;
        else tally.other++;
      },
    };
    const sampler = sampleWaitEvents(options.postgresUrl, new URL(database.url).pathname.slice(1));
    log(`authhost: ${options.durationSeconds} s on 2 serves, ${connections} connections`);
    const each = Math.floor(connections / urls.length);
    const results = await Promise.all(
      urls.map((url) =>
        autocannon({ url, connections: each, duration: options.durationSeconds, requests: [request] }),
      ),
    );
    const waits = await sampler.stop();

    const answered = [...tallies.values()].reduce((n, t) => n + t.match + t.mismatch, 0);
    const other = [...tallies.values()].reduce((n, t) => n + t.other, 0);
    const errors = results.reduce((n, r) => n + r.errors + r.timeouts + r.non2xx, 0) + other;
    const pending = [...inFlight.values()];
    const mismatches = await check(runtime, cards, tallies, pending, tenants);
    const rate = results.reduce((n, r) => n + r.requests.average, 0);
    // Percentiles of the two generators' histograms cannot be merged: the worse of the two is reported.
    const worst = (key: "p50" | "p99" | "p99_9") => Math.max(...results.map((r) => r.latency[key]));
    const notes = [
      `${answered.toLocaleString("en-US")} answers (${[...tallies.values()].reduce((n, t) => n + t.mismatch, 0)} mismatches)`,
      `p50 ${fmt(worst("p50"), 1)} ms, p99.9 ${fmt(worst("p99_9"), 1)} ms`,
      `errors ${errors}`,
      `${pending.length} requests in flight at the stop`,
      mismatches.length === 0
        ? "store matches the answers exactly (audit rows, wrong tries, card and tenant counts)"
        : `store DIFFERS from the answers: ${mismatches.slice(0, 3).join("; ")}`,
      `PostgreSQL waits (active backends a sample): ${waits.waits
        .slice(0, 3)
        .map(([w, n]) => `${w} ${(n / Math.max(1, waits.samples)).toFixed(1)}`)
        .join(", ")}`,
    ];
    return [
      {
        id: "authhost",
        title: `Authorisation host: ${cardCount.toLocaleString("en-US")} cards, ${tenants} tenants, hot 10 % take half, PostgreSQL, 2 serves`,
        unit: "req/s",
        value: rate,
        baseline: rate,
        baselineLabel: "report",
        rounds: { value: [rate], baseline: [rate] },
        ratio: 1,
        p99Ms: worst("p99"),
        p99TargetMs: 25,
        notes,
        met: errors === 0 && mismatches.length === 0 && worst("p99") <= 25,
      },
    ];
  } finally {
    for (const c of children) await stop(c);
    await runtime?.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Compares the store with the answers given; returns what differs (empty when everything matches). Per card:
 * its audited matches and mismatches are the answers given, plus at most the requests still in flight at the
 * stop (each known by card and CVV); its stored wrong tries are its audited mismatches; its counted attempts
 * are its audited verifies (plus at most its requests cut off by the stop, which count but may have rolled
 * back). Per tenant: the count over its shard rows is the sum of its cards' counts.
 */
async function check(
  runtime: Runtime,
  cards: readonly Card[],
  tallies: ReadonlyMap<string, Tally>,
  pending: readonly { card: string; wrong: boolean }[],
  tenants: number,
): Promise<string[]> {
  const db = runtime.store.db;
  const differs: string[] = [];
  const zero = (): Tally => ({ match: 0, mismatch: 0, other: 0 });
  const audited = new Map<string, Tally>();
  const audits = await db
    .selectFrom("audit_events")
    .select(["public_token", "outcome", (eb) => eb.fn.countAll<string>().as("n")])
    .where("action", "=", "cvv.verify")
    .groupBy(["public_token", "outcome"])
    .execute();
  for (const a of audits) {
    const t = audited.get(a.public_token ?? "") ?? zero();
    if (a.outcome === "match" || a.outcome === "mismatch") t[a.outcome] += Number(a.n);
    else t.other += Number(a.n);
    audited.set(a.public_token ?? "", t);
  }
  const unanswered = new Map<string, Tally>();
  for (const p of pending) {
    const t = unanswered.get(p.card) ?? zero();
    t[p.wrong ? "mismatch" : "match"]++;
    unanswered.set(p.card, t);
  }
  const wrongTries = new Map(
    (await db.selectFrom("cards").select(["public_token", "cvv_wrong_tries"]).execute()).map((r) => [
      r.public_token,
      r.cvv_wrong_tries.length / 24,
    ]),
  );
  const counted = new Map<string, number>();
  for (const r of await db.selectFrom("rate_limits").select(["bucket", "count"]).execute()) {
    // card:<tenant>:<token> per card; tenant:<tenant>#<shard> summed per tenant.
    const key = r.bucket.startsWith("tenant:") ? r.bucket.replace(/#\d+$/, "") : r.bucket;
    counted.set(key, (counted.get(key) ?? 0) + Number(r.count));
  }
  const perTenant = new Array<number>(tenants).fill(0);
  const within = (stored: number, answered: number, open: number) =>
    stored >= answered && stored <= answered + open;
  for (const card of cards) {
    const told = tallies.get(card.token)!;
    const seen = audited.get(card.token) ?? zero();
    const open = unanswered.get(card.token) ?? zero();
    if (
      told.other !== 0 ||
      seen.other !== 0 ||
      !within(seen.match, told.match, open.match) ||
      !within(seen.mismatch, told.mismatch, open.mismatch)
    )
      differs.push(`${card.token}: audited ${JSON.stringify(seen)}, answered ${JSON.stringify(told)}`);
    if ((wrongTries.get(card.token) ?? 0) !== seen.mismatch)
      differs.push(
        `${card.token}: ${wrongTries.get(card.token)} wrong tries stored, ${seen.mismatch} audited`,
      );
    const cardCount = counted.get(`card:auth${card.tenant}:${card.token}`) ?? 0;
    // A request cut off by the stop may be counted without its audit row: the aborted attempt still counts.
    if (!within(cardCount, seen.match + seen.mismatch, open.match + open.mismatch))
      differs.push(`${card.token}: ${cardCount} attempts counted, ${seen.match + seen.mismatch} audited`);
    perTenant[card.tenant]! += cardCount;
  }
  perTenant.forEach((attempts, t) => {
    const n = counted.get(`tenant:auth${t}`) ?? 0;
    if (n !== attempts) differs.push(`tenant auth${t}: ${n} attempts counted, ${attempts} on its cards`);
  });
  return differs;
}
