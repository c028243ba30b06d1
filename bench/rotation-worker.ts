// One rotation worker for the bench, in its own process: waits for "go", then drains every due card either
// with the real scheduler path (`rotation.runDue`, batches of 1,000) or with the baseline — the same rows'
// writes (claim, update, outbox insert, audit insert) in the same batch size, with no cryptography or domain
// code. Invariant: both paths claim through the same repository query, so their only difference is the work.
// Before saying ready each worker rehearses its path a few batches and rolls them back: the timed drain meets
// code V8 has already compiled, as in a long-running worker, instead of a cold process's first batches
// (3-4× the CPU of later ones, and paid once per process: it would bill three workers three times).

import { loadConfig } from "../src/config.js";
import { uuidv7 } from "../src/lib/ids.js";
import { accessTokenSettings, createServices, openRuntime, revealSettings } from "../src/runtime.js";
import { chunksOf } from "../src/store/chunks.js";
import type { Db, Store } from "../src/store/db.js";

const BATCH = 1000;
const REHEARSALS = 4;
const mode = process.argv[2] === "baseline" ? "baseline" : "real";
const runtime = await openRuntime(loadConfig(process.env), { warn: () => {} });
const { repos, store, clock } = runtime;

async function baselineBatch(
  now: Date,
  transaction: Store["transaction"] = store.transaction,
): Promise<number> {
  return transaction(async (tx) => {
    const due = await repos.cards.claimDue(now.toISOString(), BATCH, undefined, tx);
    const stamp = now.toISOString();
    const next = new Date(now.getTime() + 24 * 3600_000).toISOString();
    for (const card of due) {
      await tx
        .updateTable("cards")
        .set({
          cvv_service_code: "123",
          next_rotation_at: next,
          last_scheduled_at: stamp,
          last_rotated_at: stamp,
          updated_at: stamp,
        })
        .where("id", "=", card.id)
        .execute();
    }
    const events = due.map((card) => ({
      id: uuidv7(clock),
      tenant_id: card.tenant_id,
      card_id: card.id,
      type: "card.cvv.changed",
      payload: JSON.stringify({
        publicToken: card.public_token,
        last4: card.pan_last4,
        nextRotationAt: next,
      }),
      created_at: stamp,
    }));
    for (const chunk of chunksOf(events)) await tx.insertInto("outbox_events").values(chunk).execute();
    const audits = due.map((card) => ({
      id: uuidv7(clock),
      tenant_id: card.tenant_id,
      card_id: card.id,
      public_token: card.public_token,
      actor: "bench",
      action: "cvv.rotate",
      outcome: "success",
      request_id: null,
      details: JSON.stringify({ rotationType: "AUTOMATIC", nextRotationAt: next }),
      created_at: stamp,
    }));
    for (const chunk of chunksOf(audits)) await tx.insertInto("audit_events").values(chunk).execute();
    return due.length;
  });
}

const rolledBack = Symbol("rolled back");

/** Runs fn in a transaction that never commits. */
async function rehearse<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
  let result: T | undefined;
  try {
    await store.transaction(async (tx) => {
      result = await fn(tx);
      throw rolledBack;
    });
  } catch (error) {
    if (error !== rolledBack) throw error;
  }
  return result as T;
}

/** The real path wired as runtime.ts wires it, on a store whose transactions always roll back. */
const rehearsal = createServices({
  store: { ...store, transaction: rehearse },
  repos,
  keys: runtime.keys,
  clock,
  rateLimits: runtime.config.rateLimits,
  reveal: revealSettings(runtime.config),
  wrongTryBudget: runtime.config.wrongTryBudget,
  webhookEndpointsPerTenant: runtime.config.webhooks.endpointsPerTenant,
  accessTokens: accessTokenSettings(runtime.config),
}).rotation;
for (let i = 0; i < REHEARSALS; i++) {
  if (mode === "real") await rehearsal.runDue(clock.now(), { limit: BATCH });
  else await baselineBatch(clock.now(), rehearse);
}

process.on("message", async (message: { go?: boolean }) => {
  if (!message.go) return;
  const started = performance.now();
  let total = 0;
  const now = clock.now();
  for (;;) {
    const done =
      mode === "real"
        ? await runtime.services.rotation.runDue(now, { limit: BATCH })
        : await baselineBatch(now);
    total += done;
    if (done === 0) break;
  }
  process.send?.({ done: total, ms: performance.now() - started });
  await runtime.close();
  process.disconnect?.();
});
process.send?.({ ready: true });
