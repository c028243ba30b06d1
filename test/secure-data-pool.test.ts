// Get Card Data under load (issue 13, item 6), over real HTTP on both stores: the RSA private-key work runs on
// the key provider's worker threads, so the event loop is free while it is in flight; the pool's queue is
// bounded, and a request that finds it full is answered 503 `overloaded` with Retry-After having done nothing
// (no attempt counted, no session spent), on the native route and on the reveal page's alike. A garbage key
// that was let in still costs its caller an attempt.
import { constants, createPrivateKey, privateDecrypt, publicEncrypt, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./helpers/harness.js";
import { testRsaKeyGenerator } from "./helpers/test-rsa-keys.js";

/**
 * A well-formed 4096-bit ciphertext that does not unwrap. Its first byte is zero so that it is below the
 * modulus: OpenSSL refuses a larger one before the exponentiation, and this one costs a full private operation.
 */
function garbageCiphertext(): Buffer {
  const ciphertext = randomBytes(512);
  ciphertext[0] = 0;
  return ciphertext;
}

/**
 * The CPU time of each of this process's threads so far, in ms, by thread id. Linux /proc schedstat, which
 * counts time on a CPU (not time waiting for one or for the disk), at scheduler-tick granularity.
 */
function threadsCpuMs(): Map<string, number> {
  const cpu = new Map<string, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      cpu.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ")[0]) / 1e6);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return cpu;
}

/** The CPU time of one RSA-4096 private operation on garbage, on this machine (a mean of eight). */
function rsaPrivateOpMs(): number {
  const key = createPrivateKey({ key: testRsaKeyGenerator(4096), format: "der", type: "pkcs8" });
  const ciphertexts = Array.from({ length: 8 }, garbageCiphertext);
  const self = String(process.pid);
  const before = threadsCpuMs().get(self)!;
  for (const ciphertext of ciphertexts) {
    try {
      privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, ciphertext);
    } catch {
      // Expected: it does not unwrap.
    }
  }
  return (threadsCpuMs().get(self)! - before) / ciphertexts.length;
}

interface Served {
  h: Harness;
  base: string;
  headers: Record<string, string>;
  wrapPem: string;
}

async function serve(env: Record<string, string>): Promise<Served> {
  const h = await createHarness({ env });
  await h.app.listen({ host: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  const headers = { authorization: `Bearer ${await h.token()}`, "content-type": "application/json" };
  const keys = (await h.call("GET", "/v1/secure-data/keys")).json().keys as { use: string; pem: string }[];
  return { h, base, headers, wrapPem: keys.find((k) => k.use === "wrap")!.pem };
}

/** A fresh AES-256 session key wrapped as a device does it. */
const validKey = (s: Served) =>
  publicEncrypt(
    { key: s.wrapPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    randomBytes(32),
  ).toString("base64");

interface Answer {
  status: number;
  code?: string;
  retryAfter: string | null;
}

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Answer> {
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  const json = (await response.json()) as { code?: string };
  return { status: response.status, code: json.code, retryAfter: response.headers.get("retry-after") };
}

const getCardData = (s: Served, publicToken: string, key: Buffer | string) =>
  post(`${s.base}/v1/cards/${publicToken}/secure-data`, s.headers, {
    key: typeof key === "string" ? key : key.toString("base64"),
  });

function expectOverloaded(answers: Answer[]) {
  for (const a of answers) {
    expect(a.code).toBe("overloaded");
    expect(a.retryAfter).toBe("1");
  }
}

describe("while Get Card Data's RSA work is in flight", () => {
  let s: Served;
  beforeAll(async () => {
    s = await serve({
      CARDVAULT_SECURE_DATA_THREADS: "1",
      CARDVAULT_SECURE_DATA_QUEUE: "64",
      CARDVAULT_RATE_LIMIT_PER_CARD: "1000",
    });
  });
  afterAll(() => s.h.close());

  it("runs the RSA work on threads of its own, started for it: not on the event loop", async () => {
    const burst = 16;
    const { publicToken } = await s.h.createCard();
    const started = threadsCpuMs();
    // The first Get Card Data starts what it needs (the pool's thread); it is not measured.
    expect((await getCardData(s, publicToken, garbageCiphertext())).code).toBe("session_key_invalid");
    const newThreads = [...threadsCpuMs().keys()].filter((tid) => !started.has(tid));
    const newThreadsCpuMs = () => {
      const now = threadsCpuMs();
      return newThreads.reduce((sum, tid) => sum + (now.get(tid) ?? 0), 0);
    };
    /** What a burst of `burst` concurrent requests cost the threads started for Get Card Data. */
    async function burstCpuMs(key: () => Buffer) {
      const before = newThreadsCpuMs();
      const answers = await Promise.all(
        Array.from({ length: burst }, () => getCardData(s, publicToken, key())),
      );
      expect(answers.map((a) => a.code)).toEqual(Array(burst).fill("session_key_invalid"));
      return newThreadsCpuMs() - before;
    }
    // The same requests, answers and counted attempts, but a 2048-bit ciphertext is refused by its size alone.
    const withoutRsa = await burstCpuMs(() => randomBytes(256));
    const withRsa = await burstCpuMs(garbageCiphertext);
    const rsaWork = burst * rsaPrivateOpMs();
    // The burst's RSA work (burst × one private operation) was done there, not on the event loop's thread. On
    // the event loop no thread is started and this is 0; the bound leaves room for the CPU time of an
    // operation differing between threads and cores, and for the scheduler tick.
    expect(newThreads.length).toBeGreaterThan(0);
    expect(withRsa - withoutRsa).toBeGreaterThan(rsaWork / 4);
  });
});

describe("when the pool's queue is full", () => {
  let native: Served;
  let page: Served;
  beforeAll(async () => {
    // One thread and no queue: one Get Card Data at a time; a small card budget to see what is counted.
    const tiny = { CARDVAULT_SECURE_DATA_THREADS: "1", CARDVAULT_SECURE_DATA_QUEUE: "0" };
    native = await serve({ ...tiny, CARDVAULT_RATE_LIMIT_PER_CARD: "3" });
    page = await serve(tiny);
  });
  afterAll(async () => {
    await native.h.close();
    await page.h.close();
  });

  it("answers 503 overloaded with Retry-After and counts no attempt; a garbage key let in costs one", async () => {
    const { publicToken } = await native.h.createCard();
    const burst = await Promise.all(
      Array.from({ length: 8 }, () => getCardData(native, publicToken, garbageCiphertext())),
    );
    const refused = burst.filter((a) => a.status === 503);
    const tried = burst.filter((a) => a.status === 400);
    expect(refused.length + tried.length).toBe(burst.length);
    expect(refused.length).toBeGreaterThan(0);
    expect(tried.length).toBeGreaterThan(0);
    expectOverloaded(refused);
    for (const a of tried) expect(a.code).toBe("session_key_invalid");

    // The card's budget is 3 attempts a window: only the keys that were tried took from it.
    const after: number[] = [];
    for (let i = tried.length; i <= 3; i++)
      after.push((await getCardData(native, publicToken, garbageCiphertext())).status);
    expect(after).toEqual([...Array(3 - tried.length).fill(400), 429]);
  });

  it("refuses the reveal page's Get Card Data the same way, and leaves the refused sessions unspent", async () => {
    const { publicToken } = await page.h.createCard();
    const tokens: string[] = [];
    for (let i = 0; i < 4; i++) {
      const minted = await page.h.call("POST", `/v1/cards/${publicToken}/reveal-sessions`, {
        fields: ["pan", "cvv", "expiry"],
        targetOrigin: "https://app.cardvault.test",
      });
      expect(minted.statusCode).toBe(201);
      tokens.push(minted.json().token);
    }
    const spend = (token: string) =>
      post(
        `${page.base}/reveal/api/secure-data`,
        { authorization: `RevealSession ${token}`, "content-type": "application/json" },
        { key: validKey(page) },
      );
    const answers = await Promise.all(tokens.map(spend));
    const refused = tokens.filter((_, i) => answers[i]!.status === 503);
    expect(answers.filter((a) => a.status === 200).length + refused.length).toBe(tokens.length);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.length).toBeLessThan(tokens.length);
    expectOverloaded(answers.filter((a) => a.status === 503));
    // Nothing was done: each refused session delivers when presented again.
    for (const token of refused) expect((await spend(token)).status).toBe(200);
  });
});
