// No PAN, CVV, PIN, PIN block, key or token in any log line, error body, audit record or event: run every
// flow with debug logging captured, then search everything for every secret used.

import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encipherPinBlock } from "../src/crypto/pin-block.js";
import { loadKeystore } from "../src/keys/keystore-file.js";
import { createLogger } from "../src/lib/logger.js";
import { expectedCvv, keyMaterial, panOf } from "./helpers/card-secrets.js";
import { createHarness, type Harness, TEST_JWT_SECRET, TEST_MASTER_KEY } from "./helpers/harness.js";

let h: Harness;
const logLines: string[] = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    logLines.push(chunk.toString());
    done();
  },
});

beforeAll(async () => {
  h = await createHarness({ logger: createLogger("trace", sink) });
});
afterAll(() => h.close());

describe("secrets never leak", () => {
  it("appear in no log line, error body, audit record or event across every flow", async () => {
    const bodies: string[] = [];
    const secrets = new Set<string>();
    const token = await h.token();
    secrets.add(token);
    secrets.add(TEST_JWT_SECRET);
    secrets.add(TEST_MASTER_KEY);
    for (const k of loadKeystore(join(h.dataDir, "keystore.json"), Buffer.from(TEST_MASTER_KEY, "hex"))) {
      secrets.add(k.material.toString("hex"));
      secrets.add(k.material.toString("hex").toUpperCase());
      secrets.add(k.material.toString("base64"));
    }
    const call = async (...args: Parameters<Harness["call"]>) => {
      const response = await h.call(...args);
      bodies.push(response.body, JSON.stringify(response.headers));
      return response;
    };

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
      const pan = await panOf(h, t);
      const cvv = await expectedCvv(h, t);
      const pin = String(10_000_000 + i * 7_654_321 + 13_579);
      secrets.add(pan);
      secrets.add(pan.slice(6));
      secrets.add(cvv);
      secrets.add(pin);

      const cvvRead = await h.call("GET", `/v1/cards/${t}/cvv`); // intended to return the CVV: not searched
      expect(cvvRead.json().cvv).toBe(cvv);
      await call("POST", `/v1/cards/${t}/cvv/verify`, { cvv });
      await call("POST", `/v1/cards/${t}/cvv/verify`, {
        cvv: String((Number(cvv) + 1) % 1000).padStart(3, "0"),
      });
      await call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: `${cvv}9` }); // invalid: must not be echoed
      await call("POST", `/v1/cards/${t}/cvv/unblock`, { description: "reset", updatedBy: "ops" });
      await call("PUT", `/v1/cards/${t}/pin`, { pin });
      await call("PUT", `/v1/cards/${t}/pin`, { pin: `${pin}x` }); // invalid
      const pinRead = await h.call("GET", `/v1/cards/${t}/pin`); // intended to return the PIN: not searched
      expect(pinRead.json().pin).toBe(pin);
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
      await call("PATCH", `/v1/cards/${t}`, { status: "closed" });
      await call("GET", `/v1/cards/${t}/cvv`);
      await call("GET", `/v1/cards/${t}/pin`);
    }
    await call("GET", "/v1/audit-events?limit=100");
    await call("GET", "/v1/cards/123456789/cvv", undefined, { token: `${token}x` });

    const audit = await h.runtime.store.db.selectFrom("audit_events").selectAll().execute();
    const events = await h.runtime.store.db.selectFrom("outbox_events").selectAll().execute();
    expect(audit.length).toBeGreaterThan(30);
    expect(events.length).toBeGreaterThan(5);
    expect(logLines.length).toBeGreaterThan(50);

    const haystacks = {
      logs: logLines.join("\n"),
      responses: bodies.join("\n"),
      audit: JSON.stringify(audit),
      events: JSON.stringify(events),
    };
    const hits: string[] = [];
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of secrets) {
        // Short secrets (CVVs) only count as whole tokens, not as digits inside ids or timestamps.
        const pattern = new RegExp(
          `(?<![0-9A-Za-z.:_-])${secret.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}(?![0-9A-Za-z_-])`,
        );
        if (pattern.test(text)) hits.push(`${where}: ${secret.length}-char secret`);
      }
    }
    expect(hits).toEqual([]);
  });
});
