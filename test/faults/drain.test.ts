// `serve` on SIGTERM: stops accepting, lets the requests in flight finish within CARDVAULT_SHUTDOWN_GRACE_MS,
// cuts what is left when the deadline passes, closes the store and the keys, says so in its log and exits 0.
// A real process on the test's store; the in-flight request is one whose body is still arriving.
import { Agent, request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitForOutput } from "../helpers/processes.js";
import { createServedWorld, request, type ServedWorld } from "../helpers/served.js";

let world: ServedWorld;
let token: string;
beforeAll(async () => {
  world = await createServedWorld();
  token = await world.token();
}, 60_000);
afterAll(() => world.close());

/**
 * Starts a CVV verification whose body is sent only in part; `finish()` sends the rest. Its client keeps the
 * connection alive afterwards, as a pooled client would, with no idle timeout of its own.
 */
function slowVerify(base: string, card: string) {
  const body = JSON.stringify({ cvv: "000" });
  const req = httpRequest(`${base}/v1/cards/${card}/cvv/verify`, {
    agent: new Agent({ keepAlive: true }),
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    },
  });
  const answered = new Promise<number>((resolve, reject) => {
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
  });
  // A test that fails before awaiting it must not leave its rejection unhandled.
  answered.catch(() => {});
  req.write(body.slice(0, 5));
  return { answered, finish: () => req.end(body.slice(5)) };
}

async function servedCard(base: string): Promise<string> {
  const created = await request(base, token, "POST", "/v1/cards", { type: "virtual" });
  expect(created.status).toBe(201);
  return created.body.publicToken as string;
}

describe("serve drains on SIGTERM", () => {
  it("finishes the request in flight, refuses new connections, logs the drain and exits 0", async () => {
    const { process: served, base } = await world.serve({ CARDVAULT_LOG_LEVEL: "info" });
    const card = await servedCard(base);
    const slow = slowVerify(base, card);
    await new Promise((r) => setTimeout(r, 200));

    const signalled = Date.now();
    served.child.kill("SIGTERM");
    await waitForOutput(served, "draining 1 requests");
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();

    slow.finish();
    expect(await slow.answered).toBe(200);
    // The answered client's idle keep-alive connection does not hold the drain (the grace is 10 s).
    const answered = Date.now();
    expect(await served.exited).toBe(0);
    expect(Date.now() - answered).toBeLessThan(3_000);
    expect(Date.now() - signalled).toBeLessThan(10_000);
    expect(served.output()).toContain('"msg":"drained"');
    expect(served.output()).toContain("closed the store and the key provider");
  });

  it("cuts the requests still in flight when the deadline passes, and still exits 0", async () => {
    const { process: served, base } = await world.serve({
      CARDVAULT_LOG_LEVEL: "info",
      CARDVAULT_SHUTDOWN_GRACE_MS: "300",
    });
    const card = await servedCard(base);
    const slow = slowVerify(base, card);
    await new Promise((r) => setTimeout(r, 200));

    const signalled = Date.now();
    served.child.kill("SIGTERM");
    await expect(slow.answered).rejects.toThrow();
    expect(await served.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(5_000);
    expect(served.output()).toContain("deadline passed, 1 requests cut");
  });
});
