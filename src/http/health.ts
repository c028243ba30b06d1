// Liveness and readiness, public and outside every rate limit. /healthz answers while the process runs and
// touches nothing else, so a liveness probe never restarts an instance for its database's sake. /readyz answers
// 200 only while this instance can serve: the store answers (one cheap query under a short deadline), the key
// provider has its keys open, and the database is at exactly this build's latest migration; otherwise a 503
// problem naming the failing checks, with nothing of where the database is. While `serve` drains, Fastify
// answers 503 to every request, /readyz included (return503OnClosing), so a load balancer takes it out.
import type { FastifyInstance } from "fastify";
import { sql } from "kysely";
import { AppError } from "../domain/errors.js";
import { generatedKeyTypes, type KeyProvider } from "../keys/key-provider.js";
import type { Store } from "../store/db.js";
import { latestMigration } from "../store/migrations/index.js";

/** How long the store may take to answer a readiness probe before it counts as unreachable. */
export const READY_STORE_TIMEOUT_MS = 1000;

export interface HealthDeps {
  store: Pick<Store, "ping" | "db">;
  keys: Pick<KeyProvider, "activeKeyId">;
}

type Check = "store" | "keys" | "migrations";

/** Each check's failure, in words an operator can act on; an empty object when ready. */
async function failedChecks(deps: HealthDeps): Promise<Partial<Record<Check, string>>> {
  const failed: Partial<Record<Check, string>> = {};
  // Key types are names, not key material: saying which one is missing tells the operator what `keys init` adds.
  const missing = generatedKeyTypes.filter((type) => {
    try {
      deps.keys.activeKeyId(type);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) failed.keys = `The key provider has no active key of type ${missing.join(", ")}.`;
  try {
    await withTimeout(deps.store.ping(), READY_STORE_TIMEOUT_MS);
  } catch {
    failed.store = `The database did not answer within ${READY_STORE_TIMEOUT_MS} ms.`;
    return failed;
  }
  const applied = await withTimeout(
    sql<{ latest: string | null }>`select max(name) as latest from kysely_migration`.execute(deps.store.db),
    READY_STORE_TIMEOUT_MS,
  ).then(
    (result) => result.rows[0]?.latest ?? null,
    () => null,
  );
  if (applied !== latestMigration) {
    failed.migrations = `The database is at migration ${applied ?? "none"}; this build serves ${latestMigration}.`;
  }
  return failed;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function registerHealthRoutes(app: FastifyInstance, deps: HealthDeps): void {
  const config = { rateLimit: false as const, cardParam: false as const };
  app.get("/healthz", { schema: { hide: true }, config }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: { hide: true }, config }, async () => {
    const failed = await failedChecks(deps);
    const names = Object.keys(failed) as Check[];
    if (names.length > 0) {
      throw new AppError("service_unavailable", `Not ready: ${names.join(", ")}.`, {
        fields: Object.fromEntries(names.map((name) => [name, [failed[name]!]])),
      });
    }
    return { status: "ready", checks: { store: "ok", keys: "ok", migrations: "ok" } };
  });
}
