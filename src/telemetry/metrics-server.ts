// The metrics listener (CARDVAULT_METRICS_LISTEN): GET /metrics in the Prometheus text format, on an address of
// its own that `serve` and `worker` open beside their work. Why a listener and not a scope on the API: a scrape
// covers every tenant, and a token belongs to one; the operator keeps the metrics address on a network only
// Prometheus reaches (docs/operating.md). It serves nothing else: no API, no card data, any other path 404.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Runtime } from "../runtime.js";
import type { Metrics } from "./metrics.js";

export interface MetricsServer {
  /** The port listened on (the configured one, or the one chosen for port 0). */
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(
  metrics: Metrics,
  listen: { host: string; port: number },
  onError: (error: unknown) => void = () => {},
): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "").split("?", 1)[0];
    response.setHeader("cache-control", "no-store");
    response.setHeader("x-content-type-options", "nosniff");
    if (path !== "/metrics") {
      response
        .writeHead(404, { "content-type": "text/plain; charset=utf-8" })
        .end("Not found: GET /metrics\n");
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end();
      return;
    }
    metrics.scrape().then(
      (text) => {
        response.writeHead(200, { "content-type": metrics.contentType });
        response.end(request.method === "HEAD" ? undefined : text);
      },
      (error: unknown) => {
        onError(error);
        response.writeHead(503, { "content-type": "text/plain; charset=utf-8" }).end("metrics unavailable\n");
      },
    );
  });
  server.listen(listen.port, listen.host);
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The runtime's metrics listener when metrics are on (`serve`, `worker`), its address logged. */
export async function startMetricsListener(
  runtime: Pick<Runtime, "config" | "telemetry">,
  logger: Pick<Logger, "info" | "warn">,
): Promise<MetricsServer | undefined> {
  const listen = runtime.config.metricsListen;
  const metrics = runtime.telemetry.metrics;
  if (!listen || !metrics) return undefined;
  const server = await startMetricsServer(metrics, listen, (error) =>
    logger.warn({ err: error }, "metrics scrape failed"),
  );
  logger.info(`metrics on http://${listen.host}:${server.port}/metrics`);
  return server;
}
