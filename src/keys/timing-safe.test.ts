// Secret comparisons are constant-time: every CVV, PIN, PIN-block and webhook-signature check goes through
// crypto.timingSafeEqual, a PIN check compares both the PVV and the full PIN (no early exit on the first),
// and a mismatch takes the same path as a match.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { testRsaKeyGenerator } from "../../test/helpers/test-rsa-keys.js";
import { verifyWebhook } from "../client/verify-webhook.js";
import { encipherPinBlock } from "../crypto/pin-block.js";
import { fixedClock } from "../lib/clock.js";
import type { KeyProvider } from "./key-provider.js";
import { initKeystore, loadKeystore } from "./keystore-file.js";
import { createLocalKeyProvider } from "./local-keystore.js";

const spy = vi.hoisted(() => ({ calls: 0 }));
vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:crypto")>();
  return {
    ...actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      spy.calls++;
      return actual.timingSafeEqual(a, b);
    },
  };
});

const PAN = "4000001234567899";
let keys: KeyProvider;
let pekAes: Buffer;
const counted = async <T>(fn: () => Promise<T>) => {
  const before = spy.calls;
  const result = await fn();
  return { result, calls: spy.calls - before };
};

beforeAll(() => {
  const file = join(mkdtempSync(join(tmpdir(), "cardvault-ts-")), "keystore.json");
  const master = Buffer.alloc(32, 3);
  initKeystore(file, master, fixedClock("2026-01-01T00:00:00Z"), { generateRsaKey: testRsaKeyGenerator });
  const clear = loadKeystore(file, master);
  keys = createLocalKeyProvider(clear);
  pekAes = clear.find((k) => k.type === "pek-aes")!.material;
});

describe("constant-time comparisons", () => {
  it("CVV: one timingSafeEqual per check, match or mismatch", async () => {
    const input = { cvkId: keys.activeKeyId("cvk"), pan: PAN, expiry: "2912", serviceCode: "101" };
    const cvv = await keys.deriveCvv(input);
    const wrong = String((Number(cvv) + 1) % 1000).padStart(3, "0");
    expect(await counted(() => keys.verifyCvv(input, cvv))).toEqual({ result: true, calls: 1 });
    expect(await counted(() => keys.verifyCvv(input, wrong))).toEqual({ result: false, calls: 1 });
  });

  it("PIN and PIN block: the PVV and the full PIN are both compared, whichever fails", async () => {
    const stored = await keys.sealPin(PAN, "482916");
    expect(await counted(() => keys.verifyPin(PAN, stored, "482916"))).toEqual({ result: true, calls: 2 });
    expect(await counted(() => keys.verifyPin(PAN, stored, "000000"))).toEqual({ result: false, calls: 2 });
    // Same first four digits (same PVV) but a different PIN: still both comparisons, still a mismatch.
    expect((await counted(() => keys.verifyPin(PAN, stored, "482917"))).result).toBe(false);
    const block = encipherPinBlock({ format: 4, pin: "482916", pan: PAN, key: pekAes }).toString("hex");
    expect(await counted(() => keys.verifyPinBlock(PAN, stored, { format: 4, pinBlock: block }))).toEqual({
      result: true,
      calls: 2,
    });
  });

  it("webhook signatures are compared in constant time", () => {
    const before = spy.calls;
    const secret = `whsec_${Buffer.alloc(24, 1).toString("base64")}`;
    expect(() =>
      verifyWebhook(
        "{}",
        {
          "webhook-id": "msg_1",
          "webhook-timestamp": "1767225600",
          "webhook-signature": `v1,${Buffer.alloc(32).toString("base64")}`,
        },
        secret,
        { now: () => new Date("2026-01-01T00:00:00Z") },
      ),
    ).toThrow();
    expect(spy.calls).toBeGreaterThan(before);
  });
});
