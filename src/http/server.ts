// Runs the app on a port: builds it from a Runtime, listens, and returns the graceful shutdown for the caller to
// run on its stop signal. Shutdown stops accepting connections, lets the requests in flight finish for at most
// config.shutdownGraceMs and then cuts the rest (an orchestrator kills the process at its own deadline anyway),
// lets the jobs finish their pass and release their leases, closes the metrics listener (when
// CARDVAULT_METRICS_LISTEN opened one), the store and the key provider's threads, and logs each step with the
// number of requests it waited for or cut.
import type { Logger } from "pino";
import { startJobs } from "../jobs/runner.js";
import { createJobs, type Runtime } from "../runtime.js";
import { startMetricsListener } from "../telemetry/metrics-server.js";
import { buildApp } from "./app.js";
import { createTokenVerifier } from "./auth.js";

export async function startServer(runtime: Runtime, logger: Logger) {
  const { config } = runtime;
  const app = await buildApp({
    services: runtime.services,
    idempotency: runtime.repos.idempotency,
    verifier: createTokenVerifier({ ...config.auth, hs256Secret: runtime.jwtSecret }, runtime.clock, {
      issuer: config.publicUrl,
      keys: runtime.keys,
    }),
    store: runtime.store,
    keys: runtime.keys,
    clock: runtime.clock,
    bodyLimitBytes: config.bodyLimitBytes,
    idempotencyTtlHours: config.idempotencyTtlHours,
    apiDocs: config.apiDocs,
    publicUrl: config.publicUrl,
    logger,
    telemetry: runtime.telemetry,
  });
  // Requests in flight, counted on the raw server: a response's "close" comes however it ends (sent, aborted, cut).
  let inFlight = 0;
  let closing = false;
  app.server.on("request", (_request, response) => {
    inFlight++;
    response.once("close", () => {
      inFlight--;
      // Draining, a connection whose request is answered is closed as soon as it is idle: Fastify closes the
      // connections idle when the shutdown starts, not those that go idle after, and a client's keep-alive
      // socket would otherwise hold the drain until the deadline.
      if (closing) setImmediate(() => app.server.closeIdleConnections());
    });
  });
  // The metrics listener first: an address already in use stops the start before the API takes traffic.
  const metricsServer = await startMetricsListener(runtime, logger);
  await app.listen({ host: config.host, port: config.port });
  const jobs = config.runJobs
    ? startJobs(createJobs(runtime, logger), logger, config.jobIntervalMs)
    : undefined;

  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, `shutting down: draining ${inFlight} requests`);
    // Fastify stops listening, closes idle connections and answers 503 to requests arriving on open ones.
    const closed = app.close();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"deadline">((resolve) => {
      timer = setTimeout(() => resolve("deadline"), config.shutdownGraceMs);
    });
    if ((await Promise.race([closed, deadline])) === "deadline") {
      logger.warn(`deadline passed, ${inFlight} requests cut`);
      app.server.closeAllConnections();
      await closed;
    } else {
      clearTimeout(timer);
      logger.info("drained");
    }
    await jobs?.stop();
    await metricsServer?.close();
    await runtime.close();
    logger.info("stopped: closed the store and the key provider");
  };
  return { app, shutdown };
}
