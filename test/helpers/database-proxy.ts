// A TCP proxy between the service and its PostgreSQL server, on a loopback port the test owns: a test can cut
// the database link and restore it, or read what the server answers.
import { connect, createServer, type Server, type Socket } from "node:net";
import { freePort } from "./processes.js";

export interface DatabaseProxy {
  /** The database URL rewritten to go through the proxy (the harness's databaseUrlFor). */
  urlFor(url: string): string;
  /** Drops every connection and stops listening: the database is gone. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  readonly listening: boolean;
}

/** What a test watches on each connection: the chunks the server sends, and those the client sends. */
export interface ConnectionWatch {
  server?(chunk: Buffer): void;
  client?(chunk: Buffer): void;
}

/** `watch` makes a fresh watch for each connection. */
export async function startDatabaseProxy(target: URL, watch?: () => ConnectionWatch): Promise<DatabaseProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const start = () => {
    server = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      const watching = watch?.();
      if (watching?.server) upstream.on("data", watching.server);
      if (watching?.client) client.on("data", watching.client);
      client.pipe(upstream).pipe(client);
    });
    return new Promise<void>((resolve) => server!.listen(port, "127.0.0.1", () => resolve()));
  };
  await start();
  return {
    urlFor(url) {
      const viaProxy = new URL(url);
      viaProxy.hostname = "127.0.0.1";
      viaProxy.port = String(port);
      return viaProxy.toString();
    },
    async cut() {
      const closed = new Promise((resolve) => server!.close(resolve));
      for (const s of sockets) s.destroy();
      await closed;
    },
    start,
    get listening() {
      return server?.listening ?? false;
    },
  };
}
