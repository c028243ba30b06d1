// Runs the app on a port: builds it from a Runtime, listens, and returns the graceful shutdown (stop
// accepting, finish in-flight requests, let the jobs finish their pass and release their leases, close the
// store) for the caller to run on its stop signal.
import type { Logger } from "pino";
import { startJobs } from "../jobs/runner.js";
import { createJobs, type Runtime } from "../runtime.js";
import { buildApp } from "./app.js";
import { createTokenVerifier } from "./auth.js";

export async function startServer(runtime: Runtime, logger: Logger) {
  const { config } = runtime;
  const app = await buildApp({
    services: runtime.services,
    idempotency: runtime.repos.idempotency,
    verifier: createTokenVerifier({ ...config.auth, hs256Secret: runtime.jwtSecret }, runtime.clock),
    store: runtime.store,
    clock: runtime.clock,
    bodyLimitBytes: config.bodyLimitBytes,
    idempotencyTtlHours: config.idempotencyTtlHours,
    apiDocs: config.apiDocs,
    publicUrl: config.publicUrl,
    logger,
  });
  await app.listen({ host: config.host, port: config.port });
  const jobs = config.runJobs
    ? startJobs(createJobs(runtime, logger), logger, config.jobIntervalMs)
    : undefined;

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, "shutting down: finishing in-flight requests");
    await app.close();
    await jobs?.stop();
    await runtime.close();
    logger.info("stopped");
  };
  return { app, shutdown };
}
