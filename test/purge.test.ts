// The purge job (issue 13, item 11): rows past their life go, live ones stay, one run deletes at most the batch
// size per table, later runs finish the backlog, and jobs running at once in several processes are safe.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Job } from "../src/jobs/runner.js";
import { fixedClock } from "../src/lib/clock.js";
import { createJobs } from "../src/runtime.js";
import type { RevealSessionRow } from "../src/store/schema.js";
import { createHarness, type Harness } from "./helpers/harness.js";

const BATCH = 4;
const T0 = "2026-05-01T12:00:00.000Z";
const M = 60_000;
const H = 60 * M;
const at = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();

let h: Harness;
const clock = fixedClock(T0);
beforeAll(async () => {
  h = await createHarness({ clock, env: { CARDVAULT_PURGE_BATCH_SIZE: String(BATCH) } });
});
afterAll(() => h.close());

function purgeJob(): Job {
  const job = createJobs(h.runtime).find((j) => j.name === "purge");
  if (!job) throw new Error("no purge job among the background jobs");
  return job;
}

const keys = () =>
  h.runtime.store.db.selectFrom("idempotency_keys").select(["key", "expires_at"]).orderBy("key").execute();
const sessions = () => h.runtime.store.db.selectFrom("reveal_sessions").select("id").orderBy("id").execute();

async function idempotencyKey(key: string, expiresAt: string) {
  await h.runtime.repos.idempotency.claim({
    tenant_id: "acme",
    key,
    fingerprint: "f",
    state: "done",
    response_status: 201,
    response_body: "{}",
    created_at: at(-48 * H),
    expires_at: expiresAt,
  });
}

async function revealSession(id: string, times: { createdAt: string; expiresAt: string; usedAt?: string }) {
  const row: RevealSessionRow = {
    id,
    tenant_id: "acme",
    card_id: "card-1",
    public_token: "123456789",
    token_hash: `hash-${id}`,
    fields: "pan,expiry,cvv",
    target_origin: "https://app.cardvault.test",
    created_by: "test-user",
    created_at: times.createdAt,
    expires_at: times.expiresAt,
    used_at: times.usedAt ?? null,
  };
  await h.runtime.repos.revealSessions.insert(row);
}

/** Runs the job until a run deletes nothing; the number each run deleted. */
async function drain(job: Job): Promise<number[]> {
  const runs: number[] = [];
  for (let done = -1; done !== 0 && runs.length < 50; ) {
    done = await job.runOnce();
    runs.push(done);
  }
  return runs;
}

describe("purge job (Hardening II, item 11)", () => {
  it("deletes expired idempotency keys and ended reveal sessions, at most the batch size per table a run", async () => {
    // An answer kept through the API (24 h), and keys written as the idempotency hooks write them.
    const created = await h.call(
      "POST",
      "/v1/cards",
      { type: "virtual" },
      { headers: { "idempotency-key": "api-key" } },
    );
    expect(created.statusCode).toBe(201);
    for (let i = 0; i < 10; i++)
      await idempotencyKey(`expired-${String(i).padStart(2, "0")}`, at(-(i + 1) * M));
    await idempotencyKey("expires-now", T0); // expired: the hooks treat expires_at <= now as gone
    await idempotencyKey("live", at(M));

    // Ended more than an hour ago (spent or not): neither deliverable nor counted by the hourly cap any more.
    for (let i = 0; i < 6; i++) {
      await revealSession(`old-${i}`, {
        createdAt: at(-3 * H),
        expiresAt: at(-3 * H + 5 * M),
        ...(i % 2 ? { usedAt: at(-3 * H + M) } : {}),
      });
    }
    // Within the hour the per-card cap looks back over: kept, though they can no longer deliver.
    await revealSession("expired-recently", { createdAt: at(-20 * M), expiresAt: at(-15 * M) });
    await revealSession("spent-recently", { createdAt: at(-2 * M), expiresAt: at(3 * M), usedAt: at(-M) });
    await revealSession("live", { createdAt: at(-M), expiresAt: at(4 * M) });

    const job = purgeJob();
    expect(await job.runOnce()).toBe(2 * BATCH); // 4 of 11 expired keys, 4 of 6 ended sessions
    expect((await keys()).length).toBe(13 - BATCH);
    expect((await sessions()).length).toBe(9 - BATCH);

    expect(await drain(job)).toEqual([BATCH + 2, 3, 0]); // 11 - 4 keys and 6 - 4 sessions left
    expect((await keys()).map((k) => k.key.split(" ")[0])).toEqual(["api-key", "live"]);
    expect((await sessions()).map((s) => s.id)).toEqual(["expired-recently", "live", "spent-recently"]);

    // A day on, every key has expired (the API's answer was kept 24 h) and every session has left the hour.
    clock.advance(25 * H);
    expect(await drain(job)).toEqual([5, 0]); // 2 keys, 3 sessions
    expect(await keys()).toEqual([]);
    expect(await sessions()).toEqual([]);
  });

  it("is safe to run in several processes at once: every expired row goes once, no run fails", async () => {
    const now = Date.parse(clock.now().toISOString()) - Date.parse(T0);
    for (let i = 0; i < 30; i++) await idempotencyKey(`shared-${String(i).padStart(2, "0")}`, at(now - M));
    const jobs = [purgeJob(), purgeJob(), purgeJob()];
    let deleted = 0;
    for (let round = 0; round < 20 && (await keys()).length > 0; round++) {
      const runs = await Promise.all(jobs.map((j) => j.runOnce()));
      for (const done of runs) expect(done).toBeLessThanOrEqual(BATCH);
      deleted += runs.reduce((a, b) => a + b, 0);
    }
    expect(await keys()).toEqual([]);
    expect(deleted).toBe(30);
  });

  it("deletes ended rate-limit windows of every length; windows in progress stay", async () => {
    const now = clock.now().getTime();
    const iso = (ms: number) => new Date(now + ms).toISOString();
    for (let i = 0; i < 6; i++) {
      await h.runtime.repos.rateLimits.increment([
        { bucket: `ended:${i}`, windowStart: iso(-2 * H), windowEnd: iso(-(i + 1) * M) },
      ]);
    }
    await h.runtime.repos.rateLimits.increment([
      { bucket: "day-in-progress", windowStart: iso(-20 * H), windowEnd: iso(4 * H) },
    ]);
    const job = purgeJob();
    expect(await job.runOnce()).toBe(BATCH);
    expect(await drain(job)).toEqual([6 - BATCH, 0]);
    expect(
      (await h.runtime.store.db.selectFrom("rate_limits").select("bucket").execute()).map((r) => r.bucket),
    ).toEqual(["day-in-progress"]);
  });
});
