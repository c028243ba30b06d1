// The audit recorders without a database: a batch writes exactly the rows single records would, in one
// call to the repository, and an empty batch writes nothing.
import { describe, expect, it } from "vitest";
import { fixedClock } from "../lib/clock.js";
import type { AuditRow } from "../store/schema.js";
import { createAuditBatchRecorder, createAuditRecorder } from "./audit.js";

function world() {
  const calls: AuditRow[][] = [];
  const audit = {
    insert: async (row: AuditRow) => {
      calls.push([row]);
    },
    insertMany: async (rows: readonly AuditRow[]) => {
      calls.push([...rows]);
    },
  };
  const clock = fixedClock("2026-03-01T15:00:00.000Z");
  return { calls, deps: { audit, clock } };
}

const tx = {} as Parameters<ReturnType<typeof createAuditRecorder>>[0];
const actor = { tenantId: "acme", subject: "system:rotation-scheduler" };
const card = (n: number) => ({ id: `card-${n}`, public_token: `10000000${n}` });

describe("audit recorders", () => {
  it("writes a batch with one repository call, each row as record() writes it", async () => {
    const single = world();
    const batch = world();
    const entries = [1, 2, 3].map((n) => ({
      actor: n === 2 ? { ...actor, requestId: "req-2" } : actor,
      entry: {
        action: "cvv.rotate" as const,
        outcome: "success",
        card: card(n),
        details: {
          operationType: "ROTATE_CVV" as const,
          rotationType: "AUTOMATIC" as const,
          nextRotationAt: null,
          intervalHours: null,
          updatedBy: undefined,
        },
      },
    }));
    const record = createAuditRecorder(single.deps);
    for (const { actor: a, entry } of entries) await record(tx, a, entry);
    await createAuditBatchRecorder(batch.deps)(tx, entries);

    expect(single.calls).toHaveLength(3);
    expect(batch.calls).toHaveLength(1);
    const withoutIds = (rows: AuditRow[]) => rows.map(({ id: _, ...row }) => row);
    expect(withoutIds(batch.calls[0]!)).toEqual(withoutIds(single.calls.flat()));
    expect(batch.calls[0]![1]).toMatchObject({
      tenant_id: "acme",
      card_id: "card-2",
      public_token: "100000002",
      actor: "system:rotation-scheduler",
      request_id: "req-2",
      details: JSON.stringify({
        operationType: "ROTATE_CVV",
        rotationType: "AUTOMATIC",
        nextRotationAt: null,
        intervalHours: null,
      }),
      created_at: "2026-03-01T15:00:00.000Z",
    });
    const ids = batch.calls[0]!.map((r) => r.id);
    expect([...ids].sort()).toEqual(ids); // UUIDv7: id order is the batch's order
    expect(new Set(ids).size).toBe(3);
  });

  it("writes nothing for an empty batch, and no details column for empty details", async () => {
    const { calls, deps } = world();
    await createAuditBatchRecorder(deps)(tx, []);
    expect(calls).toHaveLength(0);
    await createAuditRecorder(deps)(tx, actor, {
      action: "pin.set",
      outcome: "success",
      details: { description: undefined },
    });
    expect(calls[0]![0]).toMatchObject({ card_id: null, public_token: null, details: null });
  });
});
