// Liveness and readiness. /healthz answers while the process runs; /readyz only while the store answers,
// so a load balancer stops sending traffic to an instance that cannot reach its database.
import type { FastifyInstance } from "fastify";
import { AppError } from "../domain/errors.js";
import type { Store } from "../store/db.js";

export function registerHealthRoutes(app: FastifyInstance, deps: { store: Pick<Store, "ping"> }): void {
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: { hide: true } }, async () => {
    try {
      await deps.store.ping();
    } catch {
      throw new AppError("service_unavailable", "The database is not reachable.");
    }
    return { status: "ready" };
  });
}
