// A webhook receiver on 127.0.0.1 for the tests: it verifies every request's signature with the exported helper
// (src/client/verify-webhook.ts) and records it, and answers each path with the next mode queued for it.
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { verifyWebhook } from "../../src/client/verify-webhook.js";

export type Mode = "ok" | "fail" | "hang";

export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  verified: unknown;
  verifyError?: string;
}

/** A receiver: answers per path with the next queued mode (default ok) and verifies each request. */
export async function startReceiver(secretFor: (path: string) => string | undefined, now: () => Date) {
  const received: Received[] = [];
  const modes = new Map<string, Mode[]>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const body = Buffer.concat(chunks).toString("utf8");
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      const entry: Received = { path, headers, body, verified: undefined };
      try {
        entry.verified = verifyWebhook(body, headers, secretFor(path) ?? "whsec_AAAA", { now });
      } catch (error) {
        entry.verifyError = (error as Error).message;
      }
      received.push(entry);
      const mode = modes.get(path)?.shift() ?? (path.startsWith("/always-fail") ? "fail" : "ok");
      if (mode === "hang") return; // never answers: the sender's timeout ends the attempt
      res.statusCode = mode === "ok" ? 204 : 500;
      res.end(mode === "ok" ? "" : "receiver says no, and echoes nothing useful");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    received,
    queue: (path: string, ...next: Mode[]) => modes.set(path, [...(modes.get(path) ?? []), ...next]),
    close: async () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
