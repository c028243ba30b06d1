// The example card program's web server: serves the host page (built into dist/web/example) and, as the
// program's backend, mints reveal sessions for it. Its own origin is the session's targetOrigin unless told
// otherwise; the page it serves may frame only cardvault and talk only to this server.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface ExampleHostOptions {
  /** Where the built web assets are (dist/web). */
  assetDir: string;
  /** cardvault's origin, e.g. http://127.0.0.1:8090: the only origin the page may frame. */
  cardvaultOrigin: string;
  /** The program backend's call: POST /v1/cards/{card}/reveal-sessions with its bearer token. */
  mintSession(input: { fields: string[]; targetOrigin: string }): Promise<{ url: string }>;
  /** The origin sessions name; defaults to this server's own (set it to test a mismatched embedder). */
  targetOrigin?: string;
  host?: string;
  port?: number;
}

export interface ExampleHost {
  origin: string;
  close(): Promise<void>;
}

const FIELDS = new Set(["pan", "cvv", "expiry", "pin"]);

export async function startExampleHost(options: ExampleHostOptions): Promise<ExampleHost> {
  const files: Record<string, [string, string]> = {
    "/": ["example/index.html", "text/html; charset=utf-8"],
    "/host.js": ["example/host.js", "text/javascript; charset=utf-8"],
    "/host.css": ["example/host.css", "text/css; charset=utf-8"],
  };
  let origin = "";
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0]!;
    response.setHeader("cache-control", "no-store");
    response.setHeader(
      "content-security-policy",
      `default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-src ${options.cardvaultOrigin}; base-uri 'none'; frame-ancestors 'none'`,
    );
    const file = files[path];
    if (request.method === "GET" && file) {
      response.setHeader("content-type", file[1]);
      response.end(readFileSync(join(options.assetDir, file[0])));
      return;
    }
    if (request.method === "POST" && path === "/session") {
      let body = "";
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8");
      });
      request.on("end", () => {
        let fields: string[];
        try {
          fields = (JSON.parse(body) as { fields: string[] }).fields.filter((f) => FIELDS.has(f));
        } catch {
          response.writeHead(400).end();
          return;
        }
        options
          .mintSession({ fields, targetOrigin: options.targetOrigin ?? origin })
          .then((session) => {
            response.setHeader("content-type", "application/json");
            response.end(JSON.stringify({ url: session.url, cardvaultOrigin: options.cardvaultOrigin }));
          })
          .catch(() => response.writeHead(502).end());
      });
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve),
  );
  const address = server.address() as AddressInfo;
  origin = `http://${options.host ?? "127.0.0.1"}:${address.port}`;
  return {
    origin,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
