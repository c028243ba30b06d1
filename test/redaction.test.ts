// No PAN, CVV, PIN, PIN block, key or token in any log line, error body, audit record, event, webhook
// payload or metric: run every flow (create, CVV/PIN reads and verifies, secure data, CVV and key rotation,
// refused and rate-limited attempts, webhooks delivered to a local receiver) with trace logging captured and
// metrics on, then search everything (GET /metrics over its listener too) for every secret used. Every
// response also carries the security headers.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importWrapKey } from "../src/client/secure-data.js";
import { encipherPinBlock } from "../src/crypto/pin-block.js";
import { createWebhookSender } from "../src/jobs/webhook-sender.js";
import { loadKeystore, rotateKeys } from "../src/keys/keystore-file.js";
import { systemClock } from "../src/lib/clock.js";
import { createLogger } from "../src/lib/logger.js";
import { webhookSenderDeps } from "../src/runtime.js";
import { startMetricsServer } from "../src/telemetry/metrics-server.js";
import { expectedCvv, keyMaterial, panOf } from "./helpers/card-secrets.js";
import { createHarness, type Harness, TEST_JWT_SECRET, TEST_MASTER_KEY } from "./helpers/harness.js";

let h: Harness;
let receiver: Server;
const delivered: string[] = [];
const logLines: string[] = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    logLines.push(chunk.toString());
    done();
  },
});

/** Headers as searched: lengths and delays are numbers that can equal a 3-digit CVV by chance, so not them. */
function searchedHeaders(headers: Record<string, unknown>): string {
  const { "content-length": _length, "retry-after": _retry, ...searched } = headers;
  return JSON.stringify(searched);
}

beforeAll(async () => {
  h = await createHarness({
    logger: createLogger("trace", sink),
    allowPrivateWebhooks: ["acme"],
    env: { CARDVAULT_RATE_LIMIT_PER_CARD: "40", CARDVAULT_METRICS_LISTEN: "127.0.0.1:0" },
  });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      delivered.push(searchedHeaders(req.headers), Buffer.concat(chunks).toString("utf8"));
      res.statusCode = 204;
      res.end();
    });
  });
  receiver.listen(0, "127.0.0.1");
  await once(receiver, "listening");
});
afterAll(async () => {
  receiver?.close();
  await h?.close();
});

function addKeys(secrets: Set<string>) {
  for (const k of loadKeystore(join(h.dataDir, "keystore.json"), Buffer.from(TEST_MASTER_KEY, "hex"))) {
    secrets.add(k.material.toString("hex"));
    secrets.add(k.material.toString("hex").toUpperCase());
    secrets.add(k.material.toString("base64"));
  }
}

describe("secrets never leak", () => {
  it("appear in no log line, error body, audit record, event, webhook payload or metric across every flow", async () => {
    const bodies: string[] = [];
    const headers: { url: string; headers: Record<string, unknown> }[] = [];
    const secrets = new Set<string>();
    const token = await h.token();
    secrets.add(token);
    secrets.add(TEST_JWT_SECRET);
    secrets.add(TEST_MASTER_KEY);
    addKeys(secrets);
    /** A response that is searched (everything except the answers whose purpose is to return a secret). */
    const call = async (...args: Parameters<Harness["call"]>) => {
      const response = await h.call(...args);
      bodies.push(response.body, searchedHeaders(response.headers));
      headers.push({ url: `${args[0]} ${args[1]}`, headers: response.headers });
      return response;
    };
    /** A response meant to carry a secret (CVV read, PIN read, webhook secret): headers checked, body not searched. */
    const reveal = async (...args: Parameters<Harness["call"]>) => {
      const response = await h.call(...args);
      headers.push({ url: `${args[0]} ${args[1]}`, headers: response.headers });
      return response;
    };

    const endpoint = (
      await reveal("POST", "/v1/webhook-endpoints", {
        url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`,
      })
    ).json();
    expect(endpoint.secret).toMatch(/^whsec_/);
    secrets.add(endpoint.secret);
    secrets.add(endpoint.secret.replace(/^whsec_/, ""));

    const wrapJwk = (await call("GET", "/v1/secure-data/keys"))
      .json()
      .keys.find((k: { use: string }) => k.use === "wrap").jwk;
    const wrapKey = await importWrapKey(wrapJwk);
    const tokens: string[] = [];

    for (let i = 0; i < 3; i++) {
      const card = (
        await call(
          "POST",
          "/v1/cards",
          { type: "virtual", cardholderName: "Pat Doe" },
          { headers: { "idempotency-key": `k${i}` } },
        )
      ).json();
      const t = card.publicToken as string;
      tokens.push(t);
      const pan = await panOf(h, t);
      const cvv = await expectedCvv(h, t);
      const pin = String(10_000_000 + i * 7_654_321 + 13_579);
      secrets.add(pan);
      secrets.add(pan.slice(6));
      secrets.add(cvv);
      secrets.add(pin);

      expect((await reveal("GET", `/v1/cards/${t}/cvv`)).json().cvv).toBe(cvv);
      await call("POST", `/v1/cards/${t}/cvv/verify`, { cvv });
      await call("POST", `/v1/cards/${t}/cvv/verify`, {
        cvv: String((Number(cvv) + 1) % 1000).padStart(3, "0"),
      });
      await call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: `${cvv}9` }); // invalid: must not be echoed
      await call("POST", `/v1/cards/${t}/cvv/unblock`, { description: "reset", updatedBy: "ops" });
      await call("PUT", `/v1/cards/${t}/pin`, { pin });
      await call("PUT", `/v1/cards/${t}/pin`, { pin: `${pin}x` }); // invalid
      expect((await reveal("GET", `/v1/cards/${t}/pin`)).json().pin).toBe(pin);
      await call("POST", `/v1/cards/${t}/pin/verify`, { pin });
      await call("POST", `/v1/cards/${t}/pin/verify`, { pin: "00000000" });
      for (const [format, type] of [
        [0, "pek-tdes"],
        [4, "pek-aes"],
      ] as const) {
        const pinBlock = encipherPinBlock({ format, pin, pan, key: keyMaterial(h, type, true) })
          .toString("hex")
          .toUpperCase();
        secrets.add(pinBlock);
        await call("POST", `/v1/cards/${t}/pin/verify`, { pinBlock, format });
      }
      await call("POST", `/v1/cards/${t}/pin/verify`, { pinBlock: "FFFFFFFFFFFFFFFF", format: 0 });
      await call("POST", `/v1/cards/${t}/pin/unblock`, {});
      await call("GET", `/v1/cards/${t}/cvv/status`);

      // Secure data: the answer is encrypted for the device; the session key must appear nowhere.
      const raw = crypto.getRandomValues(new Uint8Array(32));
      secrets.add(Buffer.from(raw).toString("hex"));
      secrets.add(Buffer.from(raw).toString("base64"));
      const wrapped = Buffer.from(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, wrapKey, raw)).toString(
        "base64",
      );
      expect((await call("POST", `/v1/cards/${t}/secure-data`, { key: wrapped })).statusCode).toBe(200);
      await call("POST", `/v1/cards/${t}/secure-data`, { key: wrapped }); // replayed: refused
      await call("POST", `/v1/cards/${t}/secure-data`, { key: Buffer.alloc(512, 7).toString("base64") }); // does not unwrap

      // CVV rotation: the new CVV is a secret too.
      expect((await call("POST", `/v1/cards/${t}/cvv/rotate`, {})).statusCode).toBeLessThan(300);
      secrets.add(await expectedCvv(h, t));
    }

    // Brute force: refused attempts (429) are audited; neither the answer nor the audit names the CVV tried.
    const target = tokens[0]!;
    let limited = 0;
    for (let i = 0; i < 45; i++) {
      const r = await call("POST", `/v1/cards/${target}/cvv/verify`, { cvv: "000" });
      if (r.statusCode === 429) limited++;
    }
    expect(limited).toBeGreaterThan(0);

    // Key rotation: new data-key versions, every card re-encrypted, under trace logging.
    rotateKeys(
      join(h.dataDir, "keystore.json"),
      Buffer.from(TEST_MASTER_KEY, "hex"),
      ["pan-data", "pin-storage"],
      systemClock,
    );
    addKeys(secrets);
    await new Promise((r) => setTimeout(r, 1100)); // the running provider checks the keystore once a second
    while ((await h.runtime.services.keyRotation.reencryptBatch(2)).found > 0) {}
    expect(await h.runtime.services.keyRotation.remaining()).toBe(0);

    for (const t of tokens) {
      await call("PATCH", `/v1/cards/${t}`, { status: "closed" });
      await call("GET", `/v1/cards/${t}/cvv`);
      await call("GET", `/v1/cards/${t}/pin`);
    }
    await call("GET", "/v1/audit-events?limit=100");
    await call("GET", "/v1/events?limit=100");
    await call("GET", "/v1/cards/123456789/cvv", undefined, { token: `${token}x` });
    await call("GET", "/nope");

    // Webhooks: deliver everything queued to the local receiver.
    const sender = createWebhookSender({
      ...webhookSenderDeps(h.runtime),
      logger: createLogger("trace", sink),
    });
    await sender.runOnce();
    await sender.idle();
    const deliveries = await h.runtime.store.db.selectFrom("webhook_deliveries").selectAll().execute();

    const audit = await h.runtime.store.db.selectFrom("audit_events").selectAll().execute();
    const events = await h.runtime.store.db.selectFrom("outbox_events").selectAll().execute();
    expect(audit.length).toBeGreaterThan(30);
    expect(audit.some((a) => a.action === "rate_limit.blocked")).toBe(true);
    expect(audit.some((a) => a.action === "keys.reencrypt")).toBe(true);
    expect(audit.some((a) => a.action === "secure_data.read")).toBe(true);
    expect(events.length).toBeGreaterThan(5);
    expect(delivered.length / 2).toBeGreaterThanOrEqual(events.length);
    expect(logLines.length).toBeGreaterThan(50);

    // The metrics as Prometheus scrapes them, searched where a secret could land: the samples' names and label
    // values. Left out are the numbers the format itself writes, which a 3-digit CVV may equal by chance: each
    // sample's value (a count), the bucket bounds (le="128") and the HTTP status codes (status_code="404"),
    // and the HELP/TYPE lines (fixed texts in the code, one quoting "(429)").
    const metricsServer = await startMetricsServer(h.runtime.telemetry.metrics!, h.config.metricsListen!);
    const scraped = await (await fetch(`http://127.0.0.1:${metricsServer.port}/metrics`)).text();
    await metricsServer.close();
    expect(scraped).toContain('cardvault_rate_limited_total{class="verify"');
    const metricLabels = scraped
      .split("\n")
      .filter((line) => !line.startsWith("#"))
      .map((line) => line.slice(0, line.lastIndexOf(" ")).replace(/\b(le|status_code)="[^"]*"/g, '$1=""'))
      .join("\n");

    const haystacks = {
      metrics: metricLabels,
      logs: logLines.join("\n"),
      responses: bodies.join("\n"),
      audit: JSON.stringify(audit),
      events: JSON.stringify(events),
      webhooks: delivered.join("\n"),
      deliveries: JSON.stringify(deliveries),
    };
    const hits: string[] = [];
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of secrets) {
        // Short secrets (CVVs, PINs) only count as whole tokens, not as digits inside ids, timestamps, dotted
        // numbers (the webhook host 127.0.0.1) or base64 ciphertext; longer ones (PANs, PIN blocks, keys)
        // count wherever they appear.
        const escaped = secret.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
        const pattern =
          secret.length > 12
            ? new RegExp(escaped)
            : new RegExp(`(?<![0-9A-Za-z.:_+/=-])${escaped}(?![0-9A-Za-z_+/=-]|\\.[0-9])`);
        if (pattern.test(text)) hits.push(`${where}: ${secret.length}-char secret`);
      }
    }
    expect(hits).toEqual([]);
    console.info(
      `[redaction] ${secrets.size} secrets searched in ${logLines.length} log lines, ${bodies.length / 2} responses, ${audit.length} audit rows, ${events.length} events, ${delivered.length / 2} webhook deliveries: ${hits.length} leaks`,
    );

    // Security headers on every response, errors and refusals included.
    for (const { url, headers: hd } of headers) {
      expect(hd["x-content-type-options"], url).toBe("nosniff");
      expect(hd["cache-control"], url).toBe("no-store");
      expect(hd["content-security-policy"], url).toContain("default-src 'none'");
      expect(hd["strict-transport-security"], url).toMatch(/max-age=\d+/);
      expect(hd["referrer-policy"], url).toBe("no-referrer");
      expect(hd["x-request-id"], url).toBeTruthy();
    }
  });
});
