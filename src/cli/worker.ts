// `cardvault worker`: the background jobs (rotation scheduler, webhook sender, purge) without the HTTP API, for
// running them in their own processes, with GET /metrics on CARDVAULT_METRICS_LISTEN when set. Stops cleanly
// on SIGTERM/SIGINT, even one that arrives while it starts.
import { startJobs } from "../jobs/runner.js";
import { createLogger } from "../lib/logger.js";
import { createJobs, openRuntime } from "../runtime.js";
import { startMetricsListener } from "../telemetry/metrics-server.js";
import { type ConfigFlags, configFrom } from "./options.js";
import { stopSignal } from "./stop-signal.js";

export async function workerCommand(values: ConfigFlags): Promise<number> {
  const config = configFrom(values);
  const logger = createLogger(config.logLevel);
  const stopped = stopSignal();
  const runtime = await openRuntime(config, { warn: (message) => logger.warn(`!!! ${message} !!!`) });
  const metricsServer = await startMetricsListener(runtime, logger);
  const jobs = startJobs(createJobs(runtime, logger), logger, config.jobIntervalMs);
  logger.info({ dataDir: config.dataDir }, "cardvault worker running");
  stopped
    .then(async (signal) => {
      logger.info({ signal }, "worker stopping: finishing the batch in hand");
      await jobs.stop();
      await metricsServer?.close();
      await runtime.close();
      logger.info("stopped");
    })
    .catch((error: unknown) => {
      logger.error({ err: error }, "shutdown failed");
      process.exitCode = 1;
    });
  return -1;
}
