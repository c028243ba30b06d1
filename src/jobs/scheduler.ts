// The rotation scheduler: rotates every card whose automatic rotation is due (on the system clock, or on
// its test clock), in batches, each once per due time (the rotation is conditional on the due time it
// claimed). On PostgreSQL any number of workers share the work (the claim skips rows other workers hold);
// on SQLite one process holds a lease and does the work, and a crashed holder's lease expires.
import type { Clock } from "../lib/clock.js";
import type { RotationService } from "../services/rotation.js";
import type { LeaseRepo } from "../store/lease-repo.js";

export const SCHEDULER_LEASE = "rotation-scheduler";

export interface SchedulerDeps {
  rotation: Pick<RotationService, "runDue">;
  leases: LeaseRepo;
  clock: Clock;
  /** Identifies this process in the lease table. */
  holder: string;
  /** Only one process may work at a time (SQLite): take the lease first. */
  exclusive: boolean;
  batchSize?: number;
  leaseMs?: number;
}

export function createRotationScheduler(deps: SchedulerDeps) {
  const batchSize = deps.batchSize ?? 1000;
  const leaseMs = deps.leaseMs ?? 30_000;
  let stopping = false;

  return {
    name: "rotation-scheduler",

    /** Rotates everything due now (unless another process holds the lease). Returns how many rotated. */
    async runOnce(): Promise<number> {
      const now = deps.clock.now();
      if (deps.exclusive) {
        const expires = new Date(now.getTime() + leaseMs).toISOString();
        if (!(await deps.leases.acquire(SCHEDULER_LEASE, deps.holder, now.toISOString(), expires))) return 0;
      }
      let total = 0;
      while (!stopping) {
        const rotated = await deps.rotation.runDue(now, { limit: batchSize });
        total += rotated;
        if (rotated < batchSize) break;
      }
      return total;
    },

    /** Finishes the batch in hand, then gives the lease up so another process can take over at once. */
    async stop(): Promise<void> {
      stopping = true;
      if (deps.exclusive) await deps.leases.release(SCHEDULER_LEASE, deps.holder);
    },
  };
}
