// `cardvault serve`: the HTTP API (and, unless switched off, the background jobs); stops cleanly on
// SIGTERM/SIGINT, even one that arrives while it starts.
import { startServer } from "../http/server.js";
import { createLogger } from "../lib/logger.js";
import { openRuntime } from "../runtime.js";
import { type ConfigFlags, configFrom } from "./options.js";
import { stopSignal } from "./stop-signal.js";

export async function serveCommand(values: ConfigFlags): Promise<number> {
  const config = configFrom(values);
  const logger = createLogger(config.logLevel);
  const stopped = stopSignal();
  const runtime = await openRuntime(config, { warn: (message) => logger.warn(`!!! ${message} !!!`) });
  const server = await startServer(runtime, logger);
  logger.info({ dataDir: config.dataDir }, `cardvault listening on http://${config.host}:${config.port}`);
  stopped.then(server.shutdown).catch((error: unknown) => {
    logger.error({ err: error }, "shutdown failed");
    process.exitCode = 1;
  });
  return -1;
}
