// `cardvault serve`: the HTTP API on the embedded store.
import { startServer } from "../http/server.js";
import { createLogger } from "../lib/logger.js";
import { openRuntime } from "../runtime.js";
import { configFrom, dataDirOption, parse } from "./options.js";

export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { ...dataDirOption, host: { type: "string" }, port: { type: "string" } });
  const config = configFrom(values);
  const logger = createLogger(config.logLevel);
  const runtime = await openRuntime(config, { warn: (message) => logger.warn(`!!! ${message} !!!`) });
  await startServer(runtime, logger);
  logger.info({ dataDir: config.dataDir }, `cardvault listening on http://${config.host}:${config.port}`);
  return -1;
}
