// Hardening II (10): a client that drops its socket in the middle of a request body is the client's doing, not
// a database outage. Real sockets on a real port: the request's headers promise a body, part of it is sent and
// the connection is destroyed; the log must say so at debug and carry no error line and no "unavailable".
import { connect } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./helpers/harness.js";

interface LogLine {
  level: number;
  msg?: string;
  err?: { code?: string; message?: string };
  res?: { statusCode?: number };
}

const lines: LogLine[] = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
    done();
  },
});

let h: Harness;
let port: number;

beforeAll(async () => {
  h = await createHarness({ logger: pino({ level: "debug" }, sink) });
  await h.app.listen({ host: "127.0.0.1", port: 0 });
  port = (h.app.server.address() as { port: number }).port;
});
afterAll(() => h.close());

/** Sends the headers and half of the promised body, then destroys the socket. */
async function abortMidBody(path: string, headers: Record<string, string> = {}): Promise<void> {
  const body = JSON.stringify({ key: "x".repeat(200) });
  const head = [
    `POST ${path} HTTP/1.1`,
    `host: 127.0.0.1:${port}`,
    "content-type: application/json",
    `content-length: ${body.length}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ].join("\r\n");
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(head + body.slice(0, body.length / 2), () => {
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
    });
    socket.on("error", reject);
  });
  // Let the server notice the close and log.
  await new Promise((resolve) => setTimeout(resolve, 200));
}

describe("a client that drops its socket mid-body", () => {
  it.each([
    ["without authentication", "/reveal/api/secure-data", false],
    ["with a valid token", "/v1/cards", true],
  ])(
    "is logged at debug as a client abort, not as a store failure (%s)",
    async (_name, path, authenticated) => {
      const auth: Record<string, string> = authenticated
        ? { authorization: `Bearer ${await h.token()}` }
        : {};
      lines.length = 0;
      await abortMidBody(path, auth);
      const text = JSON.stringify(lines);
      expect(text).not.toMatch(/unavailable/i);
      expect(
        lines.filter((l) => l.level >= 40),
        text,
      ).toEqual([]);
      expect(
        lines.some((l) => l.level === 20 && /client (closed|aborted)/i.test(l.msg ?? "")),
        text,
      ).toBe(true);
      // The server is still serving.
      expect((await h.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    },
  );
});
