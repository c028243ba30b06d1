// Test clocks (sandbox): a frozen time that cards created on it follow. Advancing a clock runs every
// rotation that falls due for its cards, in order, before it returns — a 24-hour schedule in a second.
import { AppError, validationFailed } from "../domain/errors.js";
import type { Clock } from "../lib/clock.js";
import { uuidv7 } from "../lib/ids.js";
import type { Store } from "../store/db.js";
import type { TestClockRow } from "../store/schema.js";
import type { TenantRepo } from "../store/tenant-repo.js";
import type { TestClockRepo } from "../store/test-clock-repo.js";
import type { Actor, AuditRecorder } from "./audit.js";
import type { RotationService } from "./rotation.js";

export interface TestClockView {
  id: string;
  frozenTime: string;
  createdAt: string;
}

export interface TestClockServiceDeps {
  store: Pick<Store, "transaction">;
  tenants: TenantRepo;
  testClocks: TestClockRepo;
  rotation: Pick<RotationService, "runDue">;
  record: AuditRecorder;
  clock: Clock;
}

const BATCH = 500;

function view(row: TestClockRow): TestClockView {
  return { id: row.id, frozenTime: row.frozen_time, createdAt: row.created_at };
}

function parseTime(value: string, field: string): Date {
  const time = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(time.getTime())) {
    throw validationFailed(field, `${field} must be an RFC 3339 date-time, e.g. 2026-01-01T15:00:00Z.`);
  }
  return time;
}

export function createTestClockService(deps: TestClockServiceDeps) {
  async function find(actor: Actor, id: string): Promise<TestClockRow> {
    const row = await deps.testClocks.find(actor.tenantId, id);
    if (!row) throw new AppError("not_found", "No test clock with this id.");
    return row;
  }

  return {
    async create(actor: Actor, input: { frozenTime: string }): Promise<TestClockView> {
      const tenant = await deps.tenants.find(actor.tenantId);
      if (!tenant?.sandbox) throw new AppError("sandbox_only", "Test clocks are for sandbox tenants only.");
      const row = {
        id: `clock_${uuidv7(deps.clock)}`,
        tenant_id: actor.tenantId,
        frozen_time: parseTime(input.frozenTime, "frozenTime").toISOString(),
        created_at: deps.clock.now().toISOString(),
      };
      await deps.store.transaction(async (tx) => {
        await deps.testClocks.insert(row, tx);
        await deps.record(tx, actor, {
          action: "test_clock.create",
          outcome: "success",
          details: { testClockId: row.id },
        });
      });
      return view(row);
    },

    get: async (actor: Actor, id: string) => view(await find(actor, id)),

    /** Moves the clock to `to` and rotates every card of it that is due there. */
    async advance(
      actor: Actor,
      id: string,
      input: { to: string },
    ): Promise<TestClockView & { rotations: number }> {
      const row = await find(actor, id);
      const to = parseTime(input.to, "to");
      if (to.getTime() < new Date(row.frozen_time).getTime()) {
        throw validationFailed("to", "A test clock only moves forward.");
      }
      await deps.testClocks.advance(row.id, to.toISOString());
      let rotations = 0;
      for (;;) {
        const rotated = await deps.rotation.runDue(to, { limit: BATCH, testClockId: row.id });
        rotations += rotated;
        if (rotated < BATCH) break;
      }
      return { ...view({ ...row, frozen_time: to.toISOString() }), rotations };
    },
  };
}

export type TestClockService = ReturnType<typeof createTestClockService>;
